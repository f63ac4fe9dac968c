"""API endpoints of the scoring app."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["Scoring"])
