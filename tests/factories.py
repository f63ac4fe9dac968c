"""Small factories with keyword defaults, for building test data through Embudo's own actions."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from embudo.accounts import actions as account_actions
from embudo.crm import actions as crm
from embudo.crm.models import Company, Contact, TransitionCause

_seq = itertools.count(1)

PASSWORD = "correct-horse-battery-staple"


def make_user(role: str = "admin", username: str | None = None, **kwargs: Any) -> Any:
    n = next(_seq)
    return account_actions.create_user(
        username or f"{role}{n}",
        role=role,
        password=PASSWORD,
        email=f"{role}{n}@example.com",
        **kwargs,
    )


def make_company(**kwargs: Any) -> Company:
    n = next(_seq)
    data = {"name": f"Company {n}", "domain": f"company{n}.example", **kwargs}
    return crm.create_company(data)


def make_contact(
    *, at: dt.datetime | None = None, cause: str = TransitionCause.MANUAL, **kwargs: Any
) -> Contact:
    n = next(_seq)
    data: dict[str, Any] = {
        "email": f"person{n}@example.com",
        "first_name": "Person",
        "last_name": f"Number{n}",
        **kwargs,
    }
    return crm.create_contact(data, cause=cause, at=at)


def journey(
    contact: Contact, *steps: tuple[str, dt.datetime], cause: str = TransitionCause.MANUAL
) -> Contact:
    """Walk a contact through lifecycle stages at given times: ``journey(c, ("lead", t1), ...)``."""
    for stage, when in steps:
        crm.set_lifecycle_stage(contact, stage, cause=cause, at=when)
    return contact
