"""Who acts and who looks: the types every action and query names its user by.

- :data:`Actor` — who made a change: a user, or ``None`` when Embudo itself did (a task, a
  reaction, an import run without a user). The audit log and ``created_by`` columns take it.
- :data:`RequestUser` — a request's user, logged in or anonymous (roles are read from it).
- :data:`Viewer` — whose eyes a query reads with: a user (their role decides which contacts and
  deals they see), an anonymous visitor (sees nothing), or :data:`SYSTEM`, what an API key issued
  by an admin reads as (sees every row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class System:
    """The viewer an API key reads as: issued by an admin for a system, it sees every row."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = System()

Actor: TypeAlias = "User | None"
Viewer: TypeAlias = "User | AnonymousUser | System"
#: What a request's ``user`` is: a logged-in user or an anonymous visitor.
RequestUser: TypeAlias = "User | AnonymousUser"
