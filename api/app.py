"""The app factory: ``create_app(settings)`` builds a FastAPI app whose lifespan loads the
model, opens the store and indexes the seeds once. Tests build their own apps."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from citeqa.api import errors, observability
from citeqa.api.keys import KeyStore
from citeqa.api.middleware import JsonBodyMiddleware
from citeqa.api.security import SecurityMiddleware, is_loopback
from citeqa.api.routes import ask, chat, documents, generators, health, playground, search
from citeqa.api.services import Services
from citeqa.api.settings import Settings
from citeqa.index.types import Embedder
from citeqa.qa.types import Generator

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, embedder: Embedder | None = None,
               extra_generators: dict[str, Generator] | None = None) -> FastAPI:
    """``embedder`` lets a process that already loaded the model (tests, the CLI) share it;
    ``extra_generators`` adds ready-made generators by name beside the installed plugins."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Model load and seeding are seconds of CPU work: keep them off the event loop.
        services = await anyio.to_thread.run_sync(Services.open, settings, embedder, extra_generators)
        await anyio.to_thread.run_sync(services.seed)
        app.state.services = services
        log.info("citeqa ready: %d sentences indexed in %s", services.store.sentence_count(), settings.data_dir)
        if settings.security().auth != "off" and not is_loopback(settings.host) and not keys.has_keys():
            log.warning("listening on %s with no API keys: writes are refused until one exists "
                        "(citeqa keys create --scope read --scope write)", settings.host)
        try:
            yield
        finally:
            app.state.services = None
            await anyio.to_thread.run_sync(services.close)

    app = FastAPI(
        title="citeqa",
        version="0.1.0",
        summary="Answers questions over articles and cites the exact source sentences.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = None
    errors.install(app)
    keys = KeyStore(settings.data_dir)
    app.state.keys = keys
    # Starlette runs the middleware added last first: CORS, then keys and limits, then bodies.
    app.add_middleware(JsonBodyMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityMiddleware, keys=keys, policy=settings.security())
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    # Added last, so outermost: the request id and metrics also cover 413s, 401/429s and CORS.
    observability.install(app, lambda: app.state.services.store.sentence_count() if app.state.services else 0)
    for module in (health, documents, search, ask, generators, chat, playground):
        app.include_router(module.router)
    return app
