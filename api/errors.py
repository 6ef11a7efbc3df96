"""Every error leaves as {"error": {"code", "message"}} with a 4xx that says what is wrong;
anything unexpected is a bare 500 with no stack trace (and is logged). The OpenAPI schema
says so too: every operation documents its 4xx bodies as ``ErrorOut``."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from citeqa.api.schemas import ErrorOut
from citeqa.index.ingest import InvalidDocument
from citeqa.qa.prompting import PromptError
from citeqa.qa.registry import InvalidGeneratorOptions, UnknownGenerator
from citeqa.qa.types import GeneratorError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


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

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(InvalidDocument)
    async def _invalid_document(request: Request, exc: InvalidDocument) -> JSONResponse:
        return error_response(422, "invalid_document", str(exc))

    @app.exception_handler(UnknownGenerator)
    async def _unknown_generator(request: Request, exc: UnknownGenerator) -> JSONResponse:
        return error_response(422, "unknown_generator", str(exc))

    @app.exception_handler(InvalidGeneratorOptions)
    async def _invalid_options(request: Request, exc: InvalidGeneratorOptions) -> JSONResponse:
        return error_response(422, "invalid_generator_options", str(exc))

    @app.exception_handler(GeneratorError)
    async def _generator(request: Request, exc: GeneratorError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(PromptError)
    async def _prompt(request: Request, exc: PromptError) -> JSONResponse:
        log.error("prompt template: %s", exc)
        return error_response(503, "generator_unavailable", str(exc))

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the server log has the details")


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
