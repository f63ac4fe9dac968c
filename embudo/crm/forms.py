"""Forms of the CRM pages: they parse and label input; the actions decide what is valid."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import ActivityKind, LifecycleStage


class StageForm(forms.Form):
    lifecycle_stage = forms.ChoiceField(label=_("New stage"), choices=LifecycleStage.choices)
    note = forms.CharField(label=_("Reason"), max_length=255, required=False)


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=ActivityKind.choices)
    subject = forms.CharField(label=_("Subject"), max_length=255, required=False)
    body = forms.CharField(
        label=_("Details"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    due_date = forms.DateField(
        label=_("Due date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("subject") and not data.get("body"):
            raise forms.ValidationError(_("Write a subject or some details."))
        if data.get("due_date") and data.get("kind") != ActivityKind.TASK:
            self.add_error("due_date", _("Only a task has a due date."))
        return data

    def action_data(self) -> dict[str, Any]:
        """The cleaned input in the shape ``crm.actions.log_activity`` takes."""
        data = self.cleaned_data
        due: dt.date | None = data.get("due_date")
        return {
            "kind": data["kind"],
            "subject": data["subject"],
            "body": data["body"],
            "due_at": (
                timezone.make_aware(dt.datetime.combine(due, dt.time(hour=9)))
                if due is not None
                else None
            ),
        }


class ContactFilterForm(forms.Form):
    """The contact list's query string; unknown or malformed values fall back to 'any'."""

    q = forms.CharField(required=False, max_length=200)
    stage = forms.ChoiceField(required=False, choices=[("", ""), *LifecycleStage.choices])
    owner = forms.CharField(required=False, max_length=20)
    company = forms.IntegerField(required=False, min_value=1)
    after = forms.IntegerField(required=False, min_value=0)
    before = forms.IntegerField(required=False, min_value=0)
