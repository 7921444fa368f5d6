#!/usr/bin/env python3
"""Verifies the signatures of HTTP calls as their receivers would, with code that is not courier's: the Standard
Webhooks Python package (`standardwebhooks`, the specification's own library) for Standard Webhooks calls, and
Python's hmac module for calls signed with an HMAC of an API's own scheme. The independent verifier of courier's
end-to-end signature test (tests/tests/e2e/signatures.rs).

usage: verify_webhooks.py < calls.json

stdin is one JSON object:
  {"standard_webhooks": {"<name>": "whsec_…", …},            secrets to try on Standard Webhooks calls
   "hmac": {"secrets": {"<name>": "…", …}, "header": "X-…",  secrets and scheme of the HMAC calls: the
            "prefix": "…", "algorithm": "sha256"|"sha512",    signature's header, its prefix, the hash, how it
            "encoding": "hex"|"base64",                       is written, what is signed ({timestamp}, {id},
            "signed_payload": "{timestamp}.{body}",           {body}) and the timestamp's header
            "timestamp_header": "X-…"},
   "calls": [{"scheme": "standard-webhooks"|"hmac",           each recorded call: how it should be signed,
              "headers": {"<name>": "<value>", …},            its headers (names in lower case) and its body
              "body_base64": "…"}, …]}                        as received, in base64

Prints one JSON line per call, in order: {"verified_by": [names of the secrets that verify it, sorted],
"tampered_verified_by": [the same for its body with one byte appended]}. A secret either verifies a call or
is refused with the verifier's own error; any other error ends the script.
"""

import base64
import hashlib
import hmac
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def standard_webhooks(secret, headers, body):
    """Whether the Standard Webhooks library accepts `body` with `headers` under `secret`."""
    try:
        Webhook(secret).verify(body.decode("utf-8"), headers)
        return True
    except WebhookVerificationError:
        return False


def generic_hmac(scheme, secret, headers, body):
    """Whether `headers` carry the HMAC of `scheme` under `secret` for `body`, checked with Python's hmac."""
    signed = scheme["signed_payload"].encode()
    signed = signed.replace(b"{timestamp}", headers.get(scheme.get("timestamp_header", "").lower(), "").encode())
    signed = signed.replace(b"{id}", headers.get("idempotency-key", "").encode())
    signed = signed.replace(b"{body}", body)
    digest = hmac.new(secret.encode(), signed, getattr(hashlib, scheme["algorithm"])).digest()
    written = digest.hex() if scheme["encoding"] == "hex" else base64.b64encode(digest).decode()
    sent = headers.get(scheme["header"].lower(), "")
    return hmac.compare_digest(scheme["prefix"] + written, sent)


def verified_by(spec, call, body):
    """The names of the secrets under which `call` with `body` verifies."""
    headers = call["headers"]
    if call["scheme"] == "standard-webhooks":
        secrets = spec["standard_webhooks"]
        return sorted(name for name, secret in secrets.items() if standard_webhooks(secret, headers, body))
    scheme = spec["hmac"]
    return sorted(name for name, secret in scheme["secrets"].items() if generic_hmac(scheme, secret, headers, body))


def main():
    spec = json.load(sys.stdin)
    for call in spec["calls"]:
        body = base64.b64decode(call["body_base64"])
        verdict = {
            "verified_by": verified_by(spec, call, body),
            "tampered_verified_by": verified_by(spec, call, body + b" "),
        }
        print(json.dumps(verdict), flush=True)


if __name__ == "__main__":
    main()
