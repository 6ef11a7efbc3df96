"""``GET /v1/generators``: the installed generators, which can answer here, and their options."""

from __future__ import annotations

from fastapi import APIRouter

from citeqa.api.deps import ServicesDep
from citeqa.api.schemas import GeneratorList, GeneratorOut

router = APIRouter(tags=["answers"])


@router.get("/v1/generators", response_model=GeneratorList)
def list_generators(services: ServicesDep) -> GeneratorList:
    """The installed generators (plugins of the ``citeqa.generators`` entry-point group),
    whether each can answer here (and if not, how to add what it needs), its options, and
    which is the default."""
    infos = services.generators.describe()
    return GeneratorList(generators=[GeneratorOut(**vars(i)) for i in infos], default=services.generators.default)
