"""Background work for personas: reassigning everyone after a persona change on a big database.
Safe to run twice: it computes the assignment from the personas as they are when it runs."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task()
def assign_personas_task() -> dict[str, Any]:
    from embudo.segments import actions

    return {"assigned": actions.assign_personas()}
