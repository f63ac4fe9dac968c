"""Every write of the capture app: recording events, stitching visitors to contacts, form
submissions, and the capture settings (site keys, forms, channel rules).

- :mod:`.ingest` — events, visitors, touchpoints, identity stitching, the group-commit ingest turn;
- :mod:`.forms` — form submissions;
- :mod:`.settings` — site keys, form definitions and channel rules.

Callers import from here (``from embudo.tracking.actions import record_events``); the modules
are where the code lives.
"""

from embudo.tracking.actions.forms import Submission, submit_form
from embudo.tracking.actions.ingest import (
    BULK_CONTACTS,
    GROUP_LIMIT,
    LOCK_RETRIES,
    MAX_BATCH,
    NOT_A_VISIT,
    IngestResult,
    identify_visitor,
    record_events,
    retrying_if_locked,
    set_first_touch,
)
from embudo.tracking.actions.settings import (
    CONTACT_TARGETS,
    FIELD_TYPES,
    RESERVED_NAMES,
    create_form,
    create_site_key,
    reset_channel_rules,
    revoke_site_key,
    save_channel_rules,
    update_form,
    update_site_key,
)

__all__ = [
    "BULK_CONTACTS",
    "CONTACT_TARGETS",
    "FIELD_TYPES",
    "GROUP_LIMIT",
    "LOCK_RETRIES",
    "MAX_BATCH",
    "NOT_A_VISIT",
    "RESERVED_NAMES",
    "IngestResult",
    "Submission",
    "create_form",
    "create_site_key",
    "identify_visitor",
    "record_events",
    "reset_channel_rules",
    "retrying_if_locked",
    "revoke_site_key",
    "save_channel_rules",
    "set_first_touch",
    "submit_form",
    "update_form",
    "update_site_key",
]
