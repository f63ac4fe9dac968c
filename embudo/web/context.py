"""Template context shared by every page: the navigation and the user's role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from embudo.accounts.roles import role_of
from embudo.web.navigation import items_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    role = role_of(getattr(request, "user", None))
    return {"embudo_role": role, "nav_items": items_for(role, request.path)}
