"""Dependencies reach routes as typed aliases built from the app's state, never globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citeqa.api.errors import ApiError
from citeqa.api.services import Services
from citeqa.api.settings import Settings


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "not_ready", "the index is still loading; try again shortly")
    return services


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def top_k_or_default(top_k: int | None, services: Services) -> int:
    limit = services.settings.max_top_k
    if top_k is not None and top_k > limit:
        raise ApiError(422, "invalid_request", f"top_k must be at most {limit}")
    return top_k or services.settings.default_top_k
