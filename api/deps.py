"""Dependencies reach routes as typed aliases built from the app's state, never globals.

They are ``async def``: each only reads ``app.state``, and FastAPI runs a plain ``def``
dependency in its thread pool, one thread hop per dependency per request (three for
``/v1/ask``, before the route's own), each a wait for a worker thread on a busy machine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citeqa.api.errors import ApiError
from citeqa.api.observability import Metrics
from citeqa.api.services import Services
from citeqa.api.settings import Settings


async def get_services_if_ready(request: Request) -> Services | None:
    """None until the lifespan has loaded the model and opened the store."""
    services: Services | None = getattr(request.app.state, "services", None)
    return services


async def get_services(request: Request) -> Services:
    services = await get_services_if_ready(request)
    if services is None:
        raise ApiError(503, "not_ready", "the index is still loading; try again shortly")
    return services


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


ServicesDep = Annotated[Services, Depends(get_services)]
ServicesIfReadyDep = Annotated[Services | None, Depends(get_services_if_ready)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def top_k_or_default(top_k: int | None, settings: Settings) -> int:
    limit = settings.max_top_k
    if top_k is not None and top_k > limit:
        raise ApiError(422, "invalid_request", f"top_k must be at most {limit}")
    return top_k or settings.default_top_k

