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
    """The entries this role may open, each with its URL and whether it is the current page.

    Only the entry whose URL is the longest prefix of the current path is current, so the
    pipeline at /deals/ is not lit up on /deals/plan/ when the plan has an entry of its own.
    """
    entries: list[dict[str, object]] = []
    for item in _ITEMS:
        if role is None or (item.roles and role not in item.roles):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        entries.append({"url": url, "label": item.label, "active": False})
    matches = [
        entry
        for entry in entries
        if (
            current_path == "/"
            if entry["url"] == "/"
            else current_path.startswith(str(entry["url"]))
        )
    ]
    if matches:
        max(matches, key=lambda entry: len(str(entry["url"])))["active"] = True
    return entries
