"""``{% contact_prediction contact %}``: the contact page's predicted-conversion card."""

from __future__ import annotations

from typing import Any

from django import template

from embudo.predictive.queries import prediction_for

register = template.Library()


@register.inclusion_tag("predictive/contact_prediction.html")
def contact_prediction(contact: Any) -> dict[str, Any]:
    prediction = prediction_for(contact.pk)
    reasons = prediction.reasons if prediction else []
    strongest = max((abs(r["contribution"]) for r in reasons), default=1.0) or 1.0
    return {
        "prediction": prediction,
        "reasons": [
            {**r, "width": round(60 * abs(r["contribution"]) / strongest)} for r in reasons
        ],
    }
