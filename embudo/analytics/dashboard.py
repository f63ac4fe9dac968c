"""The shared dashboard: which reports it shows, with which filters, and their registration.

The funnel engineer's reports (funnel, velocity, kpis) and the attribution engineer's
(attribution, roi: their modules' ``register()``) are registered here, once, from the app's
``ready()``; the page renders any registered report through the same typed result.
"""

from __future__ import annotations

import importlib

from embudo.reports import register_report


def register_all() -> None:
    from embudo.analytics import funnel, kpis, velocity

    register_report(funnel.SPEC)
    register_report(velocity.SPEC)
    register_report(kpis.SPEC)
    for module in ("attribution", "roi"):
        try:
            found = importlib.import_module(f"embudo.analytics.{module}")
        except ModuleNotFoundError as missing:
            if missing.name != f"embudo.analytics.{module}":
                raise
            continue
        register = getattr(found, "register", None)
        if callable(register):
            register()
