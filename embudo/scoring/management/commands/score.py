"""`embudo score SUBCOMMAND`: scoring's command line. Each subcommand is a pair (add its parser,
run it) in SUBCOMMANDS; the predictive app brings `train` and `report`, and the rule-based
scoring adds its own (`rescore`) the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandParser, OutputWrapper

from embudo.commands import DataCommand
from embudo.predictive import cli as predictive_cli
from embudo.scoring import cli as rules_cli

Subcommand = tuple[Callable[[Any], None], Callable[[dict[str, Any], OutputWrapper], None]]

SUBCOMMANDS: dict[str, Subcommand] = {**rules_cli.SUBCOMMANDS, **predictive_cli.SUBCOMMANDS}


class Command(DataCommand):
    help = "Scoring: " + ", ".join(sorted(SUBCOMMANDS)) + "."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="subcommand", required=True, parser_class=CommandParser, metavar="SUBCOMMAND"
        )
        for add, _run in SUBCOMMANDS.values():
            add(subparsers)

    def handle(self, *args: Any, **options: Any) -> None:
        _add, run = SUBCOMMANDS[options["subcommand"]]
        run(options, self.stdout)
