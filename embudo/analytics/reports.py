"""The analytics app's reports, as the report registry finds them (see embudo.reports)."""

from __future__ import annotations

from embudo.analytics import attribution, funnel, kpis, roi, velocity

REPORTS = (funnel.SPEC, velocity.SPEC, kpis.SPEC, attribution.ATTRIBUTION, roi.ROI)
