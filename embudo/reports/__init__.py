r"""The registry of reports: one typed query object per report, shared by every outlet.

An app lists its :class:`ReportSpec`\ s as ``REPORTS`` in its ``reports`` module, found on first
use (so a command that runs no report never imports one); ``embudo report NAME``,
``GET /api/v1/reports/{name}`` and the pages all run it the same way, so a number is the same
wherever it is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Protocol

from django.apps import apps
from django.utils.module_loading import module_has_submodule

from embudo.errors import EmbudoError


class ReportError(EmbudoError, ValueError):
    """A report request that cannot run (unknown report, bad option or date); says why."""


@dataclass(frozen=True)
class Table:
    """The flat form of a result: what the CLI table and the CSV show."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


class ReportResult(Protocol):
    def to_dict(self) -> dict[str, Any]: ...

    def table(self) -> Table: ...


@dataclass(frozen=True)
class ReportOption:
    name: str  # as in --name on the CLI and ?name= in the API
    help: str
    choices: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True)
class ReportParams:
    """What every outlet hands a report: the date range and the report's own options."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def option(self, name: str, default: str = "") -> str:
        return self.options.get(name) or default


@dataclass(frozen=True)
class ReportSpec:
    name: str
    description: str
    run: Callable[[ReportParams], ReportResult]
    # The Django permission a logged-in user needs; API keys need the read scope.
    permission: str = ""
    options: tuple[ReportOption, ...] = ()


_REPORTS: dict[str, ReportSpec] = {}


def _registry() -> dict[str, ReportSpec]:
    """Every installed app's ``reports.REPORTS``, gathered the first time one is asked for."""
    if not _REPORTS:
        for app in apps.get_app_configs():
            if module_has_submodule(app.module, "reports"):
                module = import_module(f"{app.name}.reports")
                for spec in getattr(module, "REPORTS", ()):
                    _REPORTS[spec.name] = spec
    return _REPORTS


def report_names() -> list[str]:
    return sorted(_registry())


def get_report(name: str) -> ReportSpec:
    try:
        return _registry()[name]
    except KeyError:
        known = ", ".join(report_names()) or "none registered"
        raise ReportError(f"no report named {name!r}; the reports are: {known}") from None


def all_options() -> list[ReportOption]:
    """Every option any report declares, once per name (the CLI offers them all as flags)."""
    seen: dict[str, ReportOption] = {}
    for spec in _registry().values():
        for option in spec.options:
            seen.setdefault(option.name, option)
    return list(seen.values())


def parse_date(raw: str | None, name: str) -> dt.date | None:
    if raw is None or not str(raw).strip():
        return None
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ReportError(f"--{name} {raw!r} is not a date (use YYYY-MM-DD)") from None


def build_params(
    spec: ReportSpec, date_from: str | None, date_to: str | None, raw: Mapping[str, Any]
) -> ReportParams:
    """Check the common parameters and the options this report knows; the rest is ignored."""
    start, end = parse_date(date_from, "from"), parse_date(date_to, "to")
    if start and end and end < start:
        raise ReportError(f"the period ends ({end}) before it starts ({start})")
    options: dict[str, str] = {}
    for option in spec.options:
        value = raw.get(option.name)
        if value is None or str(value) == "":
            if option.default:
                options[option.name] = option.default
            continue
        text = str(value).strip()
        if option.choices and text not in option.choices:
            raise ReportError(
                f"{option.name}={text!r} is not one of {', '.join(option.choices)} "
                f"(report {spec.name})"
            )
        options[option.name] = text
    return ReportParams(start, end, options)


def run_report(
    name: str,
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> ReportResult:
    spec = get_report(name)
    return spec.run(build_params(spec, date_from, date_to, options or {}))
