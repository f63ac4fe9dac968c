"""Every write of the handoff app: hand MQLs to sales with their SLA clocks, stop or breach the
clocks, record sales' feedback, reassign, and keep the settings marketing and sales agree on.

Actions own their transaction, the audit entry and the after-commit work (mail, deadline tasks).

- :mod:`.clocks` — the SLA clocks: deadlines, the tasks that check them, stopping them;
- :mod:`.handoff` — handing off, routing and notices, reassigning and releasing leads;
- :mod:`.breaches` — a clock past its deadline: breach, escalation, handing the lead on;
- :mod:`.feedback` — sales' verdict on an MQL;
- :mod:`.settings` — rules, policies, hours, reasons, commitments, availability.

Callers import from here (``from embudo.handoff import actions; actions.hand_off(...)``); the
modules are where the code lives.
"""

from embudo.handoff.actions.breaches import breach_due
from embudo.handoff.actions.clocks import (
    CLOCKS,
    DECISION,
    FIRST_TOUCH,
    TOUCH_KINDS,
    TOUCHED_STATUSES,
    record_first_touch,
    touched_by_activities,
    touched_by_status,
    week_of,
)
from embudo.handoff.actions.feedback import record_feedback
from embudo.handoff.actions.handoff import (
    hand_off,
    managers_of,
    reassign,
    release_leads,
    tier_facts,
)
from embudo.handoff.actions.settings import (
    SETTINGS_MODELS,
    delete_setting,
    save_setting,
    set_availability,
)

__all__ = [
    "CLOCKS",
    "DECISION",
    "FIRST_TOUCH",
    "SETTINGS_MODELS",
    "TOUCHED_STATUSES",
    "TOUCH_KINDS",
    "breach_due",
    "delete_setting",
    "hand_off",
    "managers_of",
    "reassign",
    "record_feedback",
    "record_first_touch",
    "release_leads",
    "save_setting",
    "set_availability",
    "tier_facts",
    "touched_by_activities",
    "touched_by_status",
    "week_of",
]
