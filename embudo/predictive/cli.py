"""`embudo score train` and `embudo score report`: the predictive model's subcommands of the
scoring app's `embudo score` command."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, OutputWrapper

from embudo.predictive import actions, queries


def add_train(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="learn the predictive conversion model from contacts with a known outcome",
        description=(
            "Learn from contacts that became customers or were disqualified (or lost all their "
            "deals), score every open contact, and print the held-out figures and leakage flags."
        ),
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FIELD",
        help="leave a field out of this run, on top of the stored exclusions (repeatable)",
    )
    parser.add_argument(
        "--remember",
        action="store_true",
        help="store the --exclude fields in the settings, for every later run (as the page does)",
    )
    parser.add_argument(
        "--holdout",
        type=float,
        default=actions.DEFAULT_HOLDOUT,
        help="share of outcomes held out to measure the model (0: none; default 0.2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the models")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def add_report(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="how well the predictive model and the rule-based scores predict real outcomes",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run_train(options: dict[str, Any], out: OutputWrapper) -> None:
    if options["remember"] and options["exclude"]:
        stored = actions.predictive_settings().excluded_fields
        saved = actions.set_excluded_fields([*stored, *options["exclude"]])
        out.write("Excluded from now on: " + ", ".join(saved))
    result = actions.train_model(
        exclude=options["exclude"], holdout=options["holdout"], seed=options["seed"]
    )
    if options["format"] == "json":
        out.write(json.dumps(result.to_dict(), default=str, indent=2))
    else:
        out.write(train_text(result))
    if not result.ok:
        raise CommandError(result.message)


def train_text(result: actions.TrainingResult) -> str:
    if not result.ok:
        return ""
    lines = [result.message]
    cv = result.metrics.get("cv_auc", {})
    lines.append(
        "Cross-validated AUC: "
        + ", ".join(f"{name} {auc:.3f}" for name, auc in sorted(cv.items()))
        + f" -> {result.algorithm}"
    )
    if result.excluded:
        lines.append("Excluded fields: " + ", ".join(result.excluded))
    holdout = result.metrics.get("holdout")
    if holdout:
        lines.append(
            f"Held-out contacts: {holdout['contacts']} ({holdout['positives']} customers): "
            f"AUC {holdout['auc']:.3f}, log loss {holdout['log_loss']:.3f}, "
            f"Brier {holdout['brier']:.4f}"
        )
    else:
        lines.append("No contacts held out: the figures above are cross-validated only.")
    if result.flags:
        lines.append("LEAKAGE GUARD — these fields may be known only after the outcome:")
        for flag in result.flags:
            lines.append(
                f"  ! {flag['field']}: {flag['reason']}  (exclude with --exclude {flag['field']})"
            )
    else:
        lines.append("Leakage guard: no field predicts the outcome suspiciously well.")
    lines.append(f"Scored {result.scored} open contacts in {result.seconds:.1f} s.")
    return "\n".join(lines)


def run_report(options: dict[str, Any], out: OutputWrapper) -> None:
    result = queries.report()
    if options["format"] == "json":
        out.write(json.dumps(result.to_dict(), default=str, indent=2))
        return
    out.write(report_text(result))


def report_text(result: queries.ModelReport) -> str:
    lines: list[str] = []
    if result.last_run["message"] and not result.last_run["ok"]:
        lines.append(f"Last training run refused: {result.last_run['message']}")
    if result.model is None:
        lines.append("No predictive model yet: run `embudo score train`.")
    else:
        m = result.model
        lines.append(
            f"Predictive model v{m['version']} ({m['algorithm']}), trained "
            f"{m['created_at']:%Y-%m-%d %H:%M} on {m['outcomes']} outcomes "
            f"({m['positives']} customers)"
        )
        if m["excluded_fields"]:
            lines.append("Excluded fields: " + ", ".join(m["excluded_fields"]))
        h = result.holdout
        if h:
            lines.append(
                f"Held out: {h['contacts']} contacts, AUC {h['auc']:.3f}, log loss "
                f"{h['log_loss']:.3f}, Brier {h['brier']:.4f}, base rate {h['base_rate']:.3f}"
            )
            lines.append("Calibration (predicted -> observed):")
            for row in h["calibration"]:
                lines.append(
                    f"  {row['from']:.1f}-{row['to']:.1f}: {row['contacts']:>7} contacts, "
                    f"predicted {row['predicted']:.3f}, observed {row['observed']:.3f}"
                )
            lines.append("Conversion by score decile (1 = highest):")
            for row in h["deciles"]:
                lines.append(
                    f"  {row['decile']:>2}: {row['contacts']:>7} contacts, scores "
                    f"{row['min_score']:.3f}-{row['max_score']:.3f}, conversion "
                    f"{row['conversion']:.3f}, lift {row['lift']:.2f}"
                )
        for flag in result.leakage_flags:
            lines.append(f"LEAKAGE GUARD ! {flag['field']}: {flag['reason']}")
    lines.append("")
    lines.append("Rule-based scores against outcomes:")
    if result.rules_message:
        lines.append(f"  {result.rules_message}")
    for rule in result.rules:
        auc = f"{rule.auc:.3f}" if rule.auc is not None else "n/a"
        lines.append(f"  {rule.model}: {rule.contacts} contacts, AUC {auc}")
        if rule.threshold is not None:
            precision = f"{rule.precision:.1%}" if rule.precision is not None else "n/a"
            lines.append(
                f"    MQL threshold ({rule.threshold}): {rule.above} met it, "
                f"{rule.above_converted} became customers ({precision})"
            )
        if rule.best_threshold is not None:
            lines.append(
                f"    Best total-score threshold by F1: {rule.best_threshold:g} (precision "
                f"{rule.best_precision:.1%}, recall {rule.best_recall:.1%})"
            )
    return "\n".join(lines)


SUBCOMMANDS = {"train": (add_train, run_train), "report": (add_report, run_report)}
