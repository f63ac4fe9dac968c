"""API endpoints of the handoff app."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["Handoff"])
