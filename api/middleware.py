"""Request bodies: a size limit (413) and JSON by default.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; this API only takes JSON,
so such bodies (and bodies with no content type) are read as JSON rather than refused.
The body is read here once, up to the limit, and handed on unchanged, or refused with a
422 that says why when it cannot be the JSON text of any request: bytes that are not UTF-8,
``\\ud800``-style escapes of unpaired surrogates (Python's json accepts them, but such a
string is not Unicode and cannot be stored, embedded or sent back), or nesting deeper than
``MAX_JSON_DEPTH`` (Python's parser gives up near 1,000 levels, and deep values that it does
accept cannot be serialized back).
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeqa.api.errors import send_error

_FORM = b"application/x-www-form-urlencoded"
MAX_JSON_DEPTH = 64

# Unpaired surrogate escapes, found by the regex engine alone (no Python loop over escapes:
# even 5 MB of escaped emoji takes about 0.1 s). An escape is real when an odd run of
# backslashes precedes its "u" (in JSON text, \\ud800 is an escaped backslash, then "ud800");
# each pattern starts at the first backslash of a run. Unpaired: a real high surrogate not
# followed at once by a low one; a real low one not right after a high one; a real low one
# right after the *text* \\ud8xx (an even run of backslashes: no escape).
_HEX2 = rb"[0-9a-fA-F]{2}"
_RUN_ODD = rb"\\(?<!\\\\)(?:\\\\)*"  # from the start of a run, an odd number of backslashes
_LONE_SURROGATES = [re.compile(p) for p in (
    _RUN_ODD + rb"(u[dD][89abAB]" + _HEX2 + rb")(?!\\u[dD][c-fC-F]" + _HEX2 + rb")",
    rb"\\(?<!\\\\)(?<!\\u[dD][89abAB]" + _HEX2 + rb"\\)(?:\\\\)*(u[dD][c-fC-F]" + _HEX2 + rb")",
    rb"\\(?<!\\\\)\\(?:\\\\)*u[dD][89abAB]" + _HEX2 + _RUN_ODD + rb"(u[dD][c-fC-F]" + _HEX2 + rb")",
)]
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_body_problem(body: bytes) -> str | None:
    """Why ``body`` cannot be a JSON request (None when it may be; the parser has the last word)."""
    encoding = json.detect_encoding(body)  # what the parser will read it as: UTF-8, or UTF-16/32 by its BOM
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding.startswith("utf-8"):
            return f"request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
        return "request body is not valid UTF-8 (nor the UTF-16/32 its first bytes suggest)"
    if not encoding.startswith("utf-8"):
        body = text.encode("utf-8")
    if _MAYBE_SURROGATE.search(body):
        for pattern in _LONE_SURROGATES:
            lone = pattern.search(body)
            if lone:
                return (f"request body has an unpaired UTF-16 surrogate escape (\\{lone.group(1).decode()} at "
                        f"offset {lone.start(1) - 1}); JSON strings must be valid Unicode")
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        depth = 0
        for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
            depth += 1 if byte in b"[{" else -1
            if depth > MAX_JSON_DEPTH:
                return f"request body is nested more than {MAX_JSON_DEPTH} levels deep"
    return None


class JsonBodyMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type in {b"", _FORM}:
            new_headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            new_headers.append((b"content-type", b"application/json"))
            scope = {**scope, "headers": new_headers}
            content_type = b"application/json"
        if body and (content_type == b"application/json" or content_type.endswith(b"+json")):
            problem = json_body_problem(bytes(body))
            if problem:
                await send_error(send, 422, "invalid_request", problem)
                return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes")

