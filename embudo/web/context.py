"""Template context shared by every page: the navigation, the user's role and its label."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from embudo.accounts.roles import ADMIN, MARKETING, SALES, SALES_MANAGER, role_of
from embudo.web.navigation import items_for

ROLE_LABELS = {
    ADMIN: _("Admin"),
    MARKETING: _("Marketing"),
    SALES: _("Sales rep"),
    SALES_MANAGER: _("Sales manager"),
}


def navigation(request: HttpRequest) -> dict[str, Any]:
    role = role_of(getattr(request, "user", None))
    return {
        "embudo_role": role,
        "embudo_role_label": ROLE_LABELS.get(role or "", ""),
        "nav_items": items_for(role, request.path),
    }
