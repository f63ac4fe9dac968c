"""The contacts export's score columns: fit, engagement (as of the export), total and band per
enabled scoring model, named ``score_<model key>_<measure>``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.utils import timezone

from embudo.crm.exporting import ColumnGroup, register_columns
from embudo.scoring import queries

MEASURES = ("fit", "engagement", "total", "band")


def _headers() -> list[str]:
    keys = queries.scoring_models().filter(enabled=True).values_list("key", flat=True)
    return [f"score_{key}_{measure}" for key in keys for measure in MEASURES]


def _values(chunk: Sequence[Any], headers: Sequence[str]) -> Iterator[list[Any]]:
    keys = [h.removeprefix("score_").removesuffix("_fit") for h in headers if h.endswith("_fit")]
    models = list(queries.scoring_models().filter(key__in=keys))
    by_key = {m.key: m for m in models}
    scores = queries.scores_for([c.pk for c in chunk], at=timezone.now(), models=models)
    for contact in chunk:
        row: list[Any] = []
        found = {s.model_key: s for s in scores.get(contact.pk, [])}
        for key in keys:
            score = found.get(key) if key in by_key else None
            if score is None:
                row += [None] * len(MEASURES)
            else:
                row += [
                    round(score.fit, 2),
                    round(score.engagement, 2),
                    round(score.total, 2),
                    score.band,
                ]
        yield row


register_columns("contacts", ColumnGroup("scores", _headers, _values))
