"""Route dependencies: read from the app's state on the event loop, no thread hop each."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import pytest

from citeqa.api import deps
from citeqa.api.errors import ApiError

DEPENDENCIES = (deps.get_services, deps.get_services_if_ready, deps.get_settings, deps.get_metrics)


def test_dependencies_are_coroutines_so_fastapi_runs_them_on_the_event_loop():
    # A plain def dependency runs in the thread pool: one hop per dependency per request.
    assert all(inspect.iscoroutinefunction(d) for d in DEPENDENCIES)


def test_dependencies_read_the_app_state_and_refuse_before_it_is_ready():
    state = SimpleNamespace(services=None, settings=object(), metrics=object())
    request = SimpleNamespace(app=SimpleNamespace(state=state))
    assert asyncio.run(deps.get_services_if_ready(request)) is None
    with pytest.raises(ApiError) as refused:
        asyncio.run(deps.get_services(request))
    assert refused.value.status == 503
    state.services = object()
    assert asyncio.run(deps.get_services(request)) is state.services
    assert asyncio.run(deps.get_settings(request)) is state.settings
    assert asyncio.run(deps.get_metrics(request)) is state.metrics
