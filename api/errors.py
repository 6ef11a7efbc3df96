"""Every error leaves as {"error": {"code", "message"}} with a 4xx that says what is wrong;
anything unexpected is a bare 500 with no stack trace (and is logged). The OpenAPI schema
says so too: every operation documents its 4xx bodies as ``ErrorOut``.

HTTP status codes are chosen here alone: the domain raises its own exceptions (a
``GeneratorError`` carries a kind, not a status), and this module maps each to a status and
an error code, for JSON responses, for the raw ASGI responses of the middlewares and for
errors inside a chat stream alike."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Iterable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from citeqa.api.schemas import ErrorOut
from citeqa.index.ingest import InvalidDocument
from citeqa.qa.prompting import PromptError
from citeqa.qa.registry import InvalidGeneratorOptions, UnknownGenerator
from citeqa.qa.types import GeneratorError, GeneratorErrorKind

log = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "internal error; the server log has the details"  # never the stack trace


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class HttpStatus:
    """How one kind of failure shows over HTTP."""

    status: int
    code: str


GENERATOR_ERRORS: Mapping[GeneratorErrorKind, HttpStatus] = {
    "upstream_error": HttpStatus(502, "upstream_error"),  # an error answer or a broken connection
    "unavailable": HttpStatus(503, "generator_unavailable"),  # not set up here: says how to set it up
    "timeout": HttpStatus(504, "upstream_timeout"),
}

# The domain's other exceptions, by class; their message is ``str(exc)``.
DOMAIN_ERRORS: Mapping[type[Exception], HttpStatus] = {
    InvalidDocument: HttpStatus(422, "invalid_document"),
    UnknownGenerator: HttpStatus(422, "unknown_generator"),
    InvalidGeneratorOptions: HttpStatus(422, "invalid_generator_options"),
    # A template named in settings that is missing or broken: the generator cannot run here.
    PromptError: HttpStatus(503, "generator_unavailable"),
}


def generator_error(exc: GeneratorError) -> ApiError:
    """A generator's failure as clients see it, in a JSON error or a chat stream's error event."""
    http = GENERATOR_ERRORS[exc.kind]
    return ApiError(http.status, http.code, exc.message)


def domain_error(exc: Exception) -> ApiError | None:
    """What a domain exception looks like over HTTP; None when it is not one of them."""
    if isinstance(exc, GeneratorError):
        return generator_error(exc)
    for cls in type(exc).__mro__:
        http = DOMAIN_ERRORS.get(cls)
        if http is not None:
            return ApiError(http.status, http.code, str(exc))
    return None


def error_body(code: str, message: str, **extra: object) -> dict[str, dict[str, object]]:
    """The one error shape: ``{"error": {"code", "message"}}`` (a chat stream's error event
    adds the ``status`` the response can no longer have)."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


async def send_error(send: Send, status: int, code: str, message: str,
                     headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """The same error body, sent as a whole raw ASGI response (for middlewares, which answer
    before or outside FastAPI's exception handlers)."""
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
          429: "rate_limited"}


def install(app: FastAPI) -> None:
    _document_errors(app)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    async def _domain(request: Request, exc: Exception) -> JSONResponse:
        error = domain_error(exc)
        if error is None:  # not reached: registered for the domain's exceptions only
            return await _unexpected(request, exc)
        if isinstance(exc, PromptError):  # a broken deployment rather than a bad request: log it
            log.error("prompt template: %s", exc)
        return error_response(error.status, error.code, error.message)

    domain: list[type[Exception]] = [GeneratorError, *DOMAIN_ERRORS]
    for exc_class in domain:
        app.add_exception_handler(exc_class, _domain)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), str(exc.detail), exc.headers)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # A number from the request too large for SQLite (a 64-bit integer) or a float; logged
        # because one that does not come from the request would be a bug.
        log.warning("overflow on %s %s: %s", request.method, request.url.path, exc)
        return error_response(422, "invalid_request", "a number in the request is out of range")


def _document_errors(app: FastAPI) -> None:
    """FastAPI documents a 422 as ``{"detail": [...]}``; ours is ``ErrorOut``, and so is any
    other 4xx. Rewrite the generated schema once, so clients (and schema-driven tests) see
    the shape they get."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        defs = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(defs.pop("$defs", {}))
        components["ErrorOut"] = defs
        ref = {"$ref": "#/components/schemas/ErrorOut"}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                if "422" in responses:
                    responses["422"] = {"description": "Invalid request",
                                        "content": {"application/json": {"schema": ref}}}
                responses.setdefault("4XX", {"description": "Error: {error: {code, message}}",
                                             "content": {"application/json": {"schema": ref}}})
        for name in ("HTTPValidationError", "ValidationError"):  # the first refers to the second
            if f'"#/components/schemas/{name}"' not in json.dumps(schema):
                components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
