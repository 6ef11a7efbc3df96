"""The app factory: ``create_app(settings)`` builds a FastAPI app whose lifespan loads the
model, opens the store and indexes the seeds once. Tests build their own apps.

With api/services.py this is the composition root: everything an app holds (settings,
services, keys, metrics) lives on ``app.state`` and reaches routes through api/deps.py."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from citeqa.api import errors, observability
from citeqa.api.keys import open_key_store
from citeqa.api.memory import IdleTrim
from citeqa.api.middleware import JsonBodyMiddleware
from citeqa.api.observability import Metrics
from citeqa.api.routes import (
    api_docs,
    ask,
    chat,
    collections,
    documents,
    generators,
    health,
    messages,
    metrics,
    playground,
    responses,
    search,
)
from citeqa.api.routes import keys as keys_routes
from citeqa.api.security import SecurityMiddleware, SecurityPolicy, is_loopback
from citeqa.api.services import Services
from citeqa.api.settings import Settings
from citeqa.index.types import Embedder
from citeqa.qa.types import Generator

log = logging.getLogger(__name__)

SEED_POLL_S = 0.2  # how often a worker that does not seed looks whether the seeds are in


def security_policy(settings: Settings) -> SecurityPolicy:
    return SecurityPolicy(
        auth=settings.auth, host=settings.host, auth_reads=settings.auth_reads,
        key_rate_per_s=settings.key_rate_per_s, key_burst=settings.key_burst,
        anonymous_rate_per_s=settings.anonymous_rate_per_s, anonymous_burst=settings.anonymous_burst,
        request_timeout_s=settings.request_timeout_s,
    )


def create_app(settings: Settings | None = None, embedder: Embedder | None = None,
               extra_generators: dict[str, Generator] | None = None,
               on_ready: Callable[[], None] | None = None, seed: bool = True) -> FastAPI:
    """``embedder`` lets a process that already loaded the model (tests, the CLI) share it;
    ``extra_generators`` adds ready-made generators by name beside the installed plugins;
    ``on_ready`` is called once the model is loaded and the seeds are indexed (a worker of
    ``citeqa serve --workers`` tells its supervisor so: api/workers.py). With ``seed`` False
    the app does not index the seeds itself but waits until another process has (the
    other workers of ``serve --workers`` wait for the first)."""
    settings = settings or Settings()
    policy = security_policy(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Model load and seeding are seconds of CPU work: keep them off the event loop.
        services = await anyio.to_thread.run_sync(Services.open, settings, embedder, extra_generators)
        if seed:
            await anyio.to_thread.run_sync(services.seed)
        else:
            while not await anyio.to_thread.run_sync(services.seeds_in):
                await anyio.sleep(SEED_POLL_S)
        app.state.services = services
        log.info("citeqa ready: %d sentences indexed in %s", services.store.sentence_count(), settings.data_dir)
        if on_ready is not None:
            on_ready()
        if not is_loopback(settings.host):
            if policy.auth != "off" and not keys.has_keys():
                log.warning("listening on %s with no API keys: writes are refused until one exists "
                            "(citeqa keys create --scope read --scope write)", settings.host)
            if not settings.public_base_url:
                log.warning("listening on %s: citation URLs start with %s; set CITEQA_PUBLIC_BASE_URL to the "
                            "address clients reach", settings.host, settings.public_url())
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(idle_trim.run)
                yield
                background.cancel_scope.cancel()
        finally:
            app.state.services = None
            await anyio.to_thread.run_sync(services.close)

    def index_size() -> int:
        services: Services | None = app.state.services
        return services.store.sentence_count() if services else 0

    app = FastAPI(
        title="citeqa",
        version="0.1.0",
        summary="Answers questions over articles and cites the exact source sentences.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by api/routes/api_docs.py from local assets, not a CDN
    )
    app.state.settings = settings
    app.state.services = None
    app.state.metrics = Metrics(index_size)  # per app: tests build many apps in one process
    app.state.kept_responses = responses.KeptResponses(settings.max_kept_responses)  # for previous_response_id
    errors.install(app)
    keys = open_key_store(settings)  # keys.db, or the tables of CITEQA_STORE's PostgreSQL
    app.state.keys = keys
    # Starlette runs the middleware added last first: CORS, then keys and limits, then bodies.
    app.add_middleware(JsonBodyMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes, upload_paths=documents.UPLOAD_PATHS)
    app.add_middleware(SecurityMiddleware, keys=keys, policy=policy)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    # Added last, so outermost: the request id and metrics also cover 413s, 401/429s and CORS.
    observability.install(app, app.state.metrics)
    idle_trim = IdleTrim()
    app.state.idle_trim = idle_trim
    app.add_middleware(idle_trim.track)  # outermost: a request is in flight until its last byte is sent
    for module in (health, documents, collections, keys_routes, search, ask, generators, chat, responses, messages,
                   playground, api_docs, metrics):
        app.include_router(module.router)
    return app
