"""The demo company's personas and segments: a step of :mod:`embudo.demo.seed`, run after the
contacts and their events exist so counts and personas come out meaningful."""

from __future__ import annotations

from typing import Any

from embudo.segments import actions
from embudo.segments.models import Persona


def _title_has(*words: str) -> dict[str, Any]:
    return {"any": [{"field": "job_title", "op": "contains", "value": w} for w in words]}


PERSONAS = [
    (
        "Marketing leader",
        "Runs marketing or demand generation; cares about MQL volume and attribution.",
        _title_has("marketing", "demand", "growth"),
    ),
    (
        "Sales leader",
        "Leads a sales team or works accounts; cares about lead quality and the SLA.",
        _title_has("sales", "ventas", "comercial", "account", "cuentas"),
    ),
    (
        "Executive",
        "Signs the contract; cares about revenue against the goal.",
        {
            "any": [
                {"field": "job_title", "op": "in", "value": ["CEO", "Founder", "COO", "CFO"]},
                {"field": "job_title", "op": "contains", "value": "general"},
                {"field": "job_title", "op": "contains", "value": "financ"},
            ]
        },
    ),
    (
        "Revenue operations",
        "Owns the CRM and the funnel's plumbing.",
        _title_has("ops", "operaciones"),
    ),
]

SEGMENTS = [
    (
        "Hot pricing visitors",
        "Open leads who looked at pricing at least twice in the last 30 days.",
        {
            "all": [
                {"field": "lifecycle_stage", "op": "in", "value": ["lead", "mql"]},
                {
                    "event": {
                        "type": "page_view",
                        "where": [{"field": "url", "op": "contains", "value": "/pricing"}],
                    },
                    "count": {"op": "gte", "value": 2},
                    "within_days": 30,
                },
            ]
        },
    ),
    (
        "Software companies, 50+ people",
        "Our best-fit accounts.",
        {
            "all": [
                {"field": "company.industry", "op": "eq", "value": "Software"},
                {"field": "company.employees", "op": "gte", "value": 50},
            ]
        },
    ),
    (
        "Quiet customers",
        "Customers with no visit in the last 90 days: a churn risk worth a call.",
        {
            "all": [
                {"field": "lifecycle_stage", "op": "in", "value": ["customer", "evangelist"]},
                {
                    "event": {"type": "page_view"},
                    "count": {"op": "eq", "value": 0},
                    "within_days": 90,
                },
            ]
        },
    ),
]


def seed_segments(ctx: Any) -> None:
    """Four personas (assigned set-based once), three dynamic segments and a static list."""
    Persona.objects.bulk_create(
        [
            Persona(
                name=name,
                description=text,
                conditions=conditions,
                priority=10 * (i + 1),
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            for i, (name, text, conditions) in enumerate(PERSONAS)
        ]
    )
    ctx.counts["personas_assigned"] = actions.assign_personas()
    for name, text, conditions in SEGMENTS:
        actions.create_segment({"name": name, "description": text, "conditions": conditions})
    webinar = actions.create_segment(
        {
            "name": "Webinar guests (March)",
            "description": "Who signed up for the smarketing SLA webinar.",
            "kind": "static",
        }
    )
    rng = ctx.rng("segments")
    guests = rng.sample(ctx.contacts, min(40, len(ctx.contacts)))
    actions.add_members(webinar, [c.pk for c in guests])
    ctx.counts["segments"] = len(SEGMENTS) + 1
    ctx.counts["personas"] = len(PERSONAS)
