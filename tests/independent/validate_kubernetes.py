#!/usr/bin/env python3
"""Validates rendered Kubernetes objects offline: every built-in kind against Kubernetes' own OpenAPI schemas
(the kubernetes-validate package, strict: an unknown field is an error), every custom resource against the
JSON Schema of its CRD vendored in deploy/kubernetes/schemas (KEDA, Prometheus Operator). A kind with no schema
is an error too, so nothing passes unchecked.

    kubectl kustomize deploy/kubernetes/overlays/example | python3 tests/independent/validate_kubernetes.py

Prints one line per object and exits 1 when any object is invalid. tests/tests/e2e/deploy.rs runs it on every
rendered overlay; scripts/test.sh installs kubernetes-validate.
"""

import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

# The oldest Kubernetes release the manifests are written for (topologySpreadConstraints.matchLabelKeys is
# on by default from 1.27).
KUBERNETES_VERSION = "1.30"

SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "schemas"


def custom_schema(resource):
    """The vendored schema of a custom resource's kind and version, or None."""
    group, _, version = resource["apiVersion"].rpartition("/")
    path = SCHEMAS / f"{resource['kind'].lower()}-{group}-{version}.json"
    return json.loads(path.read_text()) if group and path.is_file() else None


def problems(resource):
    """What is wrong with one object, as text; empty when it is valid."""
    schema = custom_schema(resource)
    if schema is not None:
        validator = jsonschema.Draft202012Validator(schema)
        return [
            f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(resource)
        ]
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '(root)'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"no schema: {error.message}; vendor its CRD's schema in {SCHEMAS}"]
    return []


def main():
    source = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    resources = [doc for doc in yaml.safe_load_all(source) if doc]
    if not resources:
        print("no objects to validate")
        return 1
    failed = 0
    for resource in resources:
        name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        found = problems(resource)
        failed += bool(found)
        for problem in found:
            print(f"INVALID {name}: {problem}")
        if not found:
            print(f"valid {name}")
    print(f"{len(resources) - failed} of {len(resources)} objects valid (Kubernetes {KUBERNETES_VERSION})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
