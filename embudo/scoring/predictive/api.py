"""API endpoints of the predictive app."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["Predictive scoring"])
