"""Checked by mypy, not run: who acts and who looks are typed, so passing the wrong thing fails.

Each line below passes something that is not an Actor or a Viewer; the ``type: ignore`` on it
must be needed (``warn_unused_ignores`` is on for this module), so if an ``actor`` or ``user``
parameter were loosened back to ``Any`` mypy would report the ignore as unused and CI would fail.
"""

from django.contrib.auth.models import AnonymousUser, User

from embudo.accounts.actors import SYSTEM
from embudo.crm import actions as crm
from embudo.crm import queries as crm_queries
from embudo.crm.models import Contact
from embudo.handoff import queries as handoff_queries
from embudo.segments import actions as segments


def wrong_actors(contact: Contact, user: User) -> None:
    crm.update_contact(contact, {}, actor="admin")  # type: ignore[arg-type]
    crm.update_contact(contact, {}, actor=contact)  # type: ignore[arg-type]
    crm.update_contact(contact, {}, actor=AnonymousUser())  # type: ignore[arg-type]
    segments.create_segment({}, actor=user.pk)  # type: ignore[arg-type]
    crm_queries.visible_contacts(contact)  # type: ignore[arg-type]
    handoff_queries.inbox(SYSTEM, handoff_queries.InboxFilter())  # type: ignore[arg-type]


def right_actors(contact: Contact, user: User) -> None:
    crm.update_contact(contact, {}, actor=user)
    crm.update_contact(contact, {}, actor=None)
    crm_queries.visible_contacts(SYSTEM)
    crm_queries.visible_contacts(AnonymousUser())
    handoff_queries.inbox(user, handoff_queries.InboxFilter())
