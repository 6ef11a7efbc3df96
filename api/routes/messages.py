"""Placeholder (issue 18): being written."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["chat"])
