"""The app shell's navigation: each app registers its entries from its AppConfig.ready()."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: str | Promise
    order: int = 50
    roles: frozenset[str] = field(default_factory=frozenset)  # empty: every role


_ITEMS: list[NavItem] = []


def register(
    url_name: str, label: str | Promise, *, order: int = 50, roles: set[str] | None = None
) -> None:
    if any(item.url_name == url_name for item in _ITEMS):
        return
    _ITEMS.append(NavItem(url_name, label, order, frozenset(roles or ())))
    _ITEMS.sort(key=lambda item: item.order)


def items_for(role: str | None, current_path: str = "") -> list[dict[str, object]]:
    """The entries this role may open, each with its URL and whether it is the current page."""
    entries: list[dict[str, object]] = []
    for item in _ITEMS:
        if role is None or (item.roles and role not in item.roles):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        active = current_path.startswith(url) if url != "/" else current_path == "/"
        entries.append({"url": url, "label": item.label, "active": active})
    return entries
