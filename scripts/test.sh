#!/usr/bin/env bash
# Runs every test. Installs the Tansu broker the integration tests start (cached; skipped when present) and the
# Python packages of the independent producer and verifier.
# Set COURIER_TEST_BOOTSTRAP=host:port to test against a running broker instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-tansu.sh
# The independent producer of the format tests (tests/independent/produce.py): librdkafka's Python client and
# the CloudEvents SDK's Kafka binding; the independent verifier of the signature test
# (tests/independent/verify_webhooks.py): the Standard Webhooks library; the independent validator of the
# Kubernetes manifests (tests/independent/validate_kubernetes.py): kubernetes-validate, Kubernetes' schemas
# with jsonschema; the independent judge of the OpenAPI document (tests/tests/e2e/openapi_fuzz.rs): Schemathesis.
python3 -m pip install --quiet --disable-pip-version-check confluent-kafka cloudevents standardwebhooks kubernetes-validate \
  'schemathesis>=4,<5'
cargo test --workspace --locked "$@"
