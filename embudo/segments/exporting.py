"""The contact export's ``persona`` column: each contact's current persona, one query a chunk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from embudo.crm.exporting import ColumnGroup, register_columns
from embudo.segments.queries import persona_names


def _values(chunk: Sequence[Any], _headers: Sequence[str]) -> Iterator[list[Any]]:
    names = persona_names(c.pk for c in chunk)
    return ([names.get(c.pk, "")] for c in chunk)


register_columns(
    "contacts", ColumnGroup(name="persona", headers=lambda: ["persona"], values=_values)
)
