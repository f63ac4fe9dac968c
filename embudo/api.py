"""The HTTP API under /api/v1/: one NinjaAPI, a router per app, errors with stable codes."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(
    title="Embudo API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
)
