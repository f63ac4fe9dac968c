"""The base of Embudo's data commands (import, export, report, createuser…)."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class DataCommand(BaseCommand):
    """A command that reads or writes data. It skips Django's system checks: they load every
    URL, so every API router and the libraries behind them, which cost each run seconds;
    `embudo serve`, `embudo demo` and `embudo migrate` still run them."""

    requires_system_checks: list[str] = []
