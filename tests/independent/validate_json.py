#!/usr/bin/env python3
"""Validates JSON values against JSON Schema files with code that is not courier's: the `jsonschema` package
(Python's reference implementation), each schema's draft taken from its `$schema`, formats checked. The
independent judge of courier's event schemas (schemas/events/): of the data courier publishes
(tests/tests/e2e/order_saga.rs) and of courier's own verdict at `POST /v1/events` (tests/tests/e2e/events_api.rs).

usage: validate_json.py < instances.json

stdin is one JSON object:
  {"schemas": {"<name>": "<path of a JSON Schema file>", …},
   "instances": [{"schema": "<name>", "instance": <any JSON value>}, …]}

Checks every schema against its draft's metaschema first, then prints one JSON line per instance, in order:
{"valid": true|false, "errors": [{"pointer": "<RFC 6901 pointer into the instance>", "message": "…"}, …]}.
Exits non-zero on a schema that is not valid, or when the `email` or `date-time` format would go unchecked (for
`date-time`, `jsonschema` needs `rfc3339-validator`: install `jsonschema[format-nongpl]`).
"""

import json
import sys

from jsonschema import FormatChecker
from jsonschema.validators import validator_for

REQUIRED_FORMATS = ("email", "date-time")


def pointer(path):
    """The RFC 6901 JSON Pointer of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def main():
    spec = json.load(sys.stdin)
    checker = FormatChecker()
    unchecked = [name for name in REQUIRED_FORMATS if name not in checker.checkers]
    if unchecked:
        sys.exit(f"formats {unchecked} would not be checked: pip install 'jsonschema[format-nongpl]'")
    validators = {}
    for name, path in spec["schemas"].items():
        with open(path, encoding="utf-8") as file:
            schema = json.load(file)
        cls = validator_for(schema)
        cls.check_schema(schema)
        validators[name] = cls(schema, format_checker=checker)
    for item in spec["instances"]:
        errors = [
            {"pointer": pointer(error.absolute_path), "message": error.message}
            for error in validators[item["schema"]].iter_errors(item["instance"])
        ]
        print(json.dumps({"valid": not errors, "errors": errors}))


if __name__ == "__main__":
    main()
