#!/usr/bin/env python3
"""Turns a CustomResourceDefinition into the JSON Schema of one of its versions, as the API server checks it.

    python3 from_crd.py CRD.yaml VERSION > kind_version.json

The `openAPIV3Schema` of the version is kept as it is, with what the API server adds: an object that lists its
`properties` takes no other field (the server prunes or, with strict field validation, refuses an unknown field)
unless it says `x-kubernetes-preserve-unknown-fields`; an `x-kubernetes-int-or-string` value is an integer or a
string; and `apiVersion` and `kind` are the resource's. Run once when a schema is updated (README.md here says
where each CRD came from); CI reads only the JSON files.
"""

import json
import sys

import yaml


def tighten(node):
    """Adds the API server's implicit rules to a schema node and its children."""
    if isinstance(node, dict):
        if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable") and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            tighten(value)
    elif isinstance(node, list):
        for value in node:
            tighten(value)


def main():
    path, version = sys.argv[1], sys.argv[2]
    with open(path) as file:
        crd = next(doc for doc in yaml.safe_load_all(file) if doc)
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = served["schema"]["openAPIV3Schema"]
    tighten(schema)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version}"]}
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    schema.setdefault("required", [])
    schema["required"] = sorted(set(schema["required"]) | {"apiVersion", "kind", "metadata"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    json.dump(schema, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
