"""Background work of e-mail: delivering a send's messages.

A task takes the send's id, loads fresh state and is safe to run twice or at once on many
workers: every delivery is claimed in the database before it is sent.
"""

from __future__ import annotations

from typing import Any

from django_tasks import task

from embudo.automation import sending


@task()
def deliver_send(send_id: int) -> dict[str, Any]:
    """Deliver batches of the send for a while, then queue what comes next."""
    return sending.deliver(send_id).as_dict()
