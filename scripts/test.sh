#!/usr/bin/env bash
# Runs every test. Installs the Tansu broker the integration tests start (cached; skipped when present), the
# Python packages of the independent producer and verifiers, and the AsyncAPI parser (npm).
# Set COURIER_TEST_BOOTSTRAP=host:port to test against a running broker instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-tansu.sh
# The independent producer of the format tests (tests/independent/produce.py): librdkafka's Python client and
# the CloudEvents SDK's Kafka binding; the independent verifier of the signature test
# (tests/independent/verify_webhooks.py): the Standard Webhooks library; the independent validator of the
# Kubernetes manifests (tests/independent/validate_kubernetes.py): kubernetes-validate, Kubernetes' schemas
# with jsonschema; the independent validator of the event schemas (tests/independent/validate_json.py):
# jsonschema with its format checkers; the independent judge of the OpenAPI document
# (tests/tests/e2e/openapi_fuzz.rs): Schemathesis.
python3 -m pip install --quiet --disable-pip-version-check confluent-kafka cloudevents standardwebhooks kubernetes-validate \
    'jsonschema[format-nongpl]' 'schemathesis>=4,<5'
# The independent validator of docs/asyncapi.yaml (tests/independent/validate_asyncapi.cjs): the AsyncAPI
# Initiative's parser, installed next to the script (tests/independent/node_modules, ignored by git).
npm install --prefix tests/independent --no-save --no-package-lock --no-audit --no-fund --ignore-scripts --silent \
    @asyncapi/parser@3.6.6
cargo test --workspace --locked "$@"
