"""API endpoints for contacts, companies, activities and the lifecycle history."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["crm"])
