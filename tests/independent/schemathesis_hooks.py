"""Schemathesis hooks of the OpenAPI fuzz test (tests/tests/e2e/openapi_fuzz.rs), loaded through SCHEMATHESIS_HOOKS.

They state to the generator two rules the document states in prose, because no schema of one request can:

* Each generated request is a new request of a client, so it carries an Idempotency-Key of its own: a key used
  again with another body is answered 422 (the Idempotency-Key draft's rule), a rule between requests. A key the
  document allows gets a unique suffix and stays one it allows (1 to 255 visible ASCII characters); a key it does
  not allow (generated to be refused) is sent as generated.
* `POST /v1/events` takes a CloudEvent in one of two modes, told apart by the content type, and the `ce-*` headers
  belong to binary mode only (a structured-mode request carries the whole event in its body and its `ce-*`
  headers mean nothing). So: a binary-mode request the generator means to be valid gets the `ce-*` headers binary
  mode requires that it lacks (with the document's example values); a structured-mode request whose only invalid
  part is a `ce-*` header is sent in binary mode (its event as the data), where that header has a meaning and must
  be refused. Nothing else is changed: every other request is sent as generated and judged by every check, and
  Schemathesis judges a changed request by what is sent (it validates it again after the hook).
"""

import re
import uuid

import schemathesis
from schemathesis.core import NotSet

VALID_KEY = re.compile(r"[!-~]{1,255}")
STRUCTURED = "application/cloudevents+json"
# The attributes binary mode requires, with the document's example values.
BINARY_REQUIRED = {
    "ce-specversion": "1.0",
    "ce-id": "evt-0001",
    "ce-source": "/signup",
    "ce-type": "user.registered",
    "ce-subject": "u-42",
}


def _mode(case, location):
    """Whether `location` ("header", "body") of `case` was generated to be refused (None when unknown)."""
    meta = case.meta
    if meta is None:
        return None
    for where, info in meta.components.items():
        if getattr(where, "value", where) == location:
            return info.mode.is_negative
    return None


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.headers is None:
        case.headers = {}
    headers = case.headers
    for name in list(headers):
        if name.lower() == "idempotency-key":
            key = headers[name]
            if isinstance(key, str) and VALID_KEY.fullmatch(key):
                headers[name] = f"{key[:200]}.{uuid.uuid4().hex}"
    if case.path != "/v1/events" or case.meta is None:
        return
    present = {name.lower() for name in headers}
    # Without a body there is no Content-Type, whatever media type the case names: binary mode, an event without
    # data.
    has_body = not isinstance(case.body, NotSet)
    structured = has_body and (case.media_type or "").split(";")[0].strip().lower() == STRUCTURED
    negative_headers = _mode(case, "header")
    negative_body = _mode(case, "body")
    if structured and negative_headers and not negative_body and any(n.startswith("ce-") for n in present):
        case.media_type = "application/json"
        if isinstance(case.body, dict) and "data" in case.body:
            case.body = case.body["data"]
    elif not structured and case.meta.generation.mode.is_positive:
        for name, value in BINARY_REQUIRED.items():
            if name not in present:
                headers[name] = value
