"""Template context shared by every page: the navigation and the user's role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from embudo.accounts.roles import role_of


def navigation(request: HttpRequest) -> dict[str, Any]:
    return {"embudo_role": role_of(getattr(request, "user", None))}
