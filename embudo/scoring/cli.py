"""`embudo score rescore [--model KEY]`: recompute every contact's rule-based scores now."""

from __future__ import annotations

import resource
import time
from typing import Any

from django.core.management.base import CommandError, OutputWrapper

from embudo.scoring import actions, queries


def add_rescore(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rescore",
        help="Recompute every contact's fit and engagement scores (all enabled models, or one).",
    )
    parser.add_argument("--model", default=None, metavar="KEY", help="Only this scoring model.")


def run_rescore(options: dict[str, Any], out: OutputWrapper) -> None:
    key = options.get("model")
    if key:
        model = queries.model_by_key(key)
        if model is None:
            known = ", ".join(queries.scoring_models().values_list("key", flat=True)) or "none"
            raise CommandError(f"no scoring model with the key {key!r} (known: {known})")
        models = [model]
    else:
        models = list(queries.scoring_models().filter(enabled=True))
        if not models:
            raise CommandError("no enabled scoring model: create one on the Scoring page first")
    for model in models:
        started = time.perf_counter()
        try:
            outcome = actions.rescore_model(model)
        except Exception as error:
            raise CommandError(
                f"rescoring {model.key} failed, the previous scores are kept: {error}"
            ) from None
        assert outcome is not None
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.write(
            f"{model.key}: {outcome.contacts:,} contacts, {outcome.changed:,} changed, "
            f"{len(outcome.promoted):,} new MQLs, in {seconds:.1f} s (peak memory {peak_mb:.0f} MB)"
        )


SUBCOMMANDS = {"rescore": (add_rescore, run_rescore)}
