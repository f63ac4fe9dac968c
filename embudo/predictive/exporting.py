"""The contacts export's predicted-conversion column (blank for contacts the model does not
score: those with an outcome already, or before any model is trained)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from embudo.crm.exporting import ColumnGroup, register_columns
from embudo.predictive.models import Prediction

HEADERS = ["predicted_conversion"]


def _values(chunk: Sequence[Any], _headers: Sequence[str]) -> Iterator[list[Any]]:
    found = dict(
        Prediction.objects.filter(contact_id__in=[c.pk for c in chunk]).values_list(
            "contact_id", "probability"
        )
    )
    for contact in chunk:
        value = found.get(contact.pk)
        yield [None if value is None else round(value, 4)]


register_columns("contacts", ColumnGroup("predicted_conversion", lambda: HEADERS, _values))
