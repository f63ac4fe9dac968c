"""``{% contact_persona contact %}``: the persona a contact has now, for the contact page."""

from __future__ import annotations

from typing import Any

from django import template

from embudo.segments.queries import persona_of

register = template.Library()


@register.simple_tag
def contact_persona(contact: Any) -> str:
    persona = persona_of(contact)
    return persona.name if persona else "—"
