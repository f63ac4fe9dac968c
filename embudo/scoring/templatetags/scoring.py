"""``{% contact_scores contact %}``: the scores card of the contact page, as of now."""

from __future__ import annotations

from typing import Any

from django import template

from embudo.scoring import queries

register = template.Library()


@register.inclusion_tag("scoring/contact_scores.html", takes_context=True)
def contact_scores(context: Any, contact: Any) -> dict[str, Any]:
    user = context["request"].user
    if not user.has_perm("scoring.view_contactscore"):
        return {"visible": False}
    history = (
        list(queries.score_history(contact.pk, limit=10))
        if user.has_perm("scoring.view_scorehistory")
        else []
    )
    return {
        "visible": True,
        "contact": contact,
        "scores": queries.contact_scores(contact.pk),
        "history": history,
    }
