"""Request bodies: a size limit (413), one well-formed content type, and JSON by default.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; this API only takes JSON,
so such bodies (and bodies with no content type) are read as JSON rather than refused.
Any other type gets 415; several ``Content-Type`` headers, or one that is not a media type
(``application/json (x)``, a stray control byte...), get 400: the framework behind this
reads the header its own way (the first of several, comments allowed), so a header this
check could read differently would let a body past it unchecked. Every body that reaches a
route has passed these checks.

One exception: a file upload, ``multipart/form-data`` sent to one of ``upload_paths``
(``POST /v1/documents``), is not JSON. It has a limit of its own (``max_upload_bytes``),
checked against ``Content-Length`` and against the bytes as they stream in, and is handed
on unread (the route's form parser spools the file); multipart/form-data sent anywhere else
gets the 415 of any other type.

A JSON body is read here once, up to the limit, and handed on unchanged, or refused with a
422 that says why when it cannot be the JSON text of any request: bytes that are not UTF-8,
``\\ud800``-style escapes of unpaired surrogates (Python's json accepts them, but such a
string is not Unicode and cannot be stored, embedded or sent back), or nesting deeper than
``MAX_JSON_DEPTH`` (Python's parser gives up near 1,000 levels, and deep values that it does
accept cannot be serialized back).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeqa.api.errors import send_error

_FORM = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"
MAX_JSON_DEPTH = 64

# RFC 9110 media-type: type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] ).
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_MEDIA_TYPE = re.compile(rb"[ \t]*(" + _TOKEN + rb"/" + _TOKEN + rb")"
                         rb"(?:[ \t]*;[ \t]*(?:" + _TOKEN + rb"=(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*[ \t]*")

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


def json_body_problem(body: bytes, what: str = "request body") -> str | None:
    """Why ``body`` cannot be a JSON request (None when it may be; the parser has the last word).
    ``what`` names it in the message (an upload's ``metadata`` field is JSON text too)."""
    encoding = json.detect_encoding(body)  # what the parser will read it as: UTF-8, or UTF-16/32 by its BOM
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding.startswith("utf-8"):
            return f"{what} is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
        return f"{what} is not valid UTF-8 (nor the UTF-16/32 its first bytes suggest)"
    if not encoding.startswith("utf-8"):
        body = text.encode("utf-8")
    if _MAYBE_SURROGATE.search(body):
        for pattern in _LONE_SURROGATES:
            lone = pattern.search(body)
            if lone:
                return (f"{what} has an unpaired UTF-16 surrogate escape (\\{lone.group(1).decode()} at "
                        f"offset {lone.start(1) - 1}); JSON strings must be valid Unicode")
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        depth = 0
        for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
            depth += 1 if byte in b"[{" else -1
            if depth > MAX_JSON_DEPTH:
                return f"{what} is nested more than {MAX_JSON_DEPTH} levels deep"
    return None


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def is_upload(content_types: list[bytes]) -> bool:
    """Whether these ``Content-Type`` values declare one well-formed multipart/form-data body
    (the routes that take a file match on the same test, so both read the header alike)."""
    if len(content_types) != 1:
        return False
    match = _MEDIA_TYPE.fullmatch(content_types[0])
    return match is not None and match.group(1).lower() == _MULTIPART


def read_as_json(content_types: list[bytes]) -> bool | Refusal:
    """Whether a body with these ``Content-Type`` header values is JSON as declared (True),
    to be read as JSON (False: no type, an empty one, or curl's form type), or refused."""
    if len(content_types) > 1:
        return Refusal(400, "bad_request", f"send one Content-Type header, not {len(content_types)}")
    if not content_types or not content_types[0].strip(b" \t"):
        return False
    match = _MEDIA_TYPE.fullmatch(content_types[0])
    if match is None:
        return Refusal(400, "bad_request", "the Content-Type header is not a media type such as application/json")
    media_type = match.group(1).lower()
    if media_type == _FORM:
        return False
    if media_type == b"application/json" or (media_type.startswith(b"application/") and media_type.endswith(b"+json")):
        return True
    return Refusal(415, "unsupported_media_type",
                   f"request bodies are JSON: send Content-Type: application/json, not {media_type.decode()}")


class _UploadTooLarge(Exception):
    """Raised into the route reading an upload once its bytes pass the limit."""


class JsonBodyMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int | None = None,
                 upload_paths: Collection[str] = ()):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes if max_upload_bytes is not None else max_body_bytes
        self.upload_paths = frozenset(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        content_types = [v for k, v in scope["headers"] if k == b"content-type"]
        to_upload_path = scope["method"] == "POST" and scope["path"] in self.upload_paths
        if to_upload_path and is_upload(content_types):
            await self._upload(scope, receive, send)
            return
        if self._declared_length(scope) > self.max_body_bytes:
            await self._too_large(send)
            return
        as_json = read_as_json(content_types)
        if isinstance(as_json, Refusal):
            if as_json.status == 415 and to_upload_path:
                as_json = Refusal(415, as_json.code, f"{as_json.message}; send a file as multipart/form-data "
                                  "(the file in a field named file)")
            await send_error(send, as_json.status, as_json.code, as_json.message)
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
        if not as_json:
            new_headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            new_headers.append((b"content-type", b"application/json"))
            scope = {**scope, "headers": new_headers}
        problem = json_body_problem(bytes(body)) if body else None
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

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand a file upload on as it streams, counting its bytes: past the limit, the
        route's read fails, whatever it answers to that is dropped, and the client gets the
        413 (a route reads the whole form before it answers, so nothing has been sent yet)."""
        limit = self.max_upload_bytes
        if self._declared_length(scope) > limit:
            await self._upload_too_large(send)
            return
        received = 0
        over = started = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _UploadTooLarge()
            return message

        async def unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except _UploadTooLarge:
            pass
        if over and not started:
            await self._upload_too_large(send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        declared = dict(scope["headers"]).get(b"content-length")
        return int(declared) if declared is not None and declared.isdigit() else -1

    async def _too_large(self, send: Send) -> None:
        await send_error(send, 413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes")

    async def _upload_too_large(self, send: Send) -> None:
        await send_error(send, 413, "payload_too_large",
                         f"the upload is more than the limit of {self.max_upload_bytes:,} bytes")
