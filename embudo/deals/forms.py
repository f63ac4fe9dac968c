"""The pages' forms: they parse and type the request; the rules live in actions and planner."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from embudo.deals.models import DealStatus


class DealFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    pipeline = forms.IntegerField(required=False, min_value=1)
    stage = forms.IntegerField(required=False, min_value=1)
    status = forms.ChoiceField(required=False, choices=[("", ""), *DealStatus.choices])
    owner = forms.CharField(required=False, max_length=20)
    closing_from = forms.DateField(required=False)
    closing_to = forms.DateField(required=False)


class DealForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=255)
    amount = forms.DecimalField(label=_("Amount"), min_value=0, max_digits=14, decimal_places=2)
    currency = forms.CharField(label=_("Currency"), max_length=3)
    stage = forms.IntegerField(label=_("Stage"), min_value=1)
    expected_close_date = forms.DateField(label=_("Expected close date"))
    owner = forms.IntegerField(label=_("Owner"), required=False, min_value=1)
    product_line = forms.IntegerField(label=_("Product line"), required=False, min_value=1)
    contact = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    company = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def action_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        out: dict[str, Any] = {
            "name": data["name"],
            "amount": data["amount"],
            "currency": data["currency"].upper(),
            "stage_id": data["stage"],
            "expected_close_date": data["expected_close_date"],
            "owner_id": data.get("owner"),
            "product_line_id": data.get("product_line"),
        }
        if data.get("contact"):
            out["contact_ids"] = [data["contact"]]
        if data.get("company"):
            out["company_id"] = data["company"]
        return out


class MoveForm(forms.Form):
    stage = forms.IntegerField(label=_("Stage"), min_value=1)
    lost_reason = forms.IntegerField(label=_("Lost reason"), required=False, min_value=1)
    note = forms.CharField(label=_("Note"), required=False, max_length=255)


class PlanForm(forms.Form):
    period = forms.CharField(label=_("Period"), required=False, max_length=10)
    revenue = forms.DecimalField(label=_("Revenue target"), required=False, max_digits=16)
    deal_value = forms.DecimalField(label=_("Average deal"), required=False, max_digits=16)
    rates = forms.CharField(
        label=_("Rates"),
        required=False,
        max_length=300,
        help_text=_("e.g. mql=0.4 sql=0.5, or lead:customer=0.05"),
    )


class GoalForm(forms.Form):
    period = forms.CharField(label=_("Period"), max_length=10)
    amount = forms.DecimalField(label=_("Revenue goal"), max_digits=16, decimal_places=2)


class ReportForm(forms.Form):
    date_from = forms.DateField(label=_("From"), required=False)
    date_to = forms.DateField(label=_("To"), required=False)
    by = forms.ChoiceField(
        label=_("By"),
        required=False,
        choices=[("period", _("Period")), ("owner", _("Owner")), ("team", _("Team"))],
    )
