"""Schemathesis hooks of the OpenAPI fuzz test (tests/tests/e2e/openapi_fuzz.rs), loaded through SCHEMATHESIS_HOOKS.

Each generated request is a new request of a client, so it carries an Idempotency-Key of its own: the document
says that a key used again with another body is answered 422 (the Idempotency-Key draft's rule), a rule between
requests that no schema of one request can state. A key that the document allows gets a unique suffix and stays
one it allows (at most 255 visible ASCII characters); a key it does not allow (generated to be refused) is sent
as generated.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        key = headers[name]
        if isinstance(key, str) and VALID_KEY.fullmatch(key):
            headers[name] = f"{key[:200]}.{uuid.uuid4().hex}"
