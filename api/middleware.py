"""Request bodies: a size limit (413) and JSON by default.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; this API only takes JSON,
so such bodies (and bodies with no content type) are read as JSON rather than refused.
The body is read here once, up to the limit, and handed on unchanged.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_FORM = b"application/x-www-form-urlencoded"


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

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        payload = json.dumps(
            {"error": {"code": "payload_too_large", "message": f"request body exceeds {self.max_body_bytes} bytes"}}
        ).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
