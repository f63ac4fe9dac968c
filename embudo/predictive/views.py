"""The model page: the active version's figures, leakage flags, exclusions, versions, and the
rule-based scores' validation. Thin: parse, check access, call one query or action, render."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from embudo.accounts.roles import ADMIN, role_of
from embudo.predictive import actions, features, queries
from embudo.predictive.models import PredictiveModel
from embudo.web.access import acting_user, role_required

VIEW = "predictive.view_predictivemodel"
CHANGE = "predictive.change_predictivesettings"


@require_GET
@role_required(VIEW)
def report_page(request: HttpRequest) -> HttpResponse:
    result = queries.report()
    excluded = set(result.excluded_fields)
    flagged = {flag["field"] for flag in result.leakage_flags}
    available = features.available_fields()
    known = {key for key, _label in available}
    fields = [
        {"key": key, "label": label, "excluded": key in excluded, "flagged": key in flagged}
        for key, label in available
    ] + [
        {"key": key, "label": key, "excluded": True, "flagged": key in flagged}
        for key in sorted(excluded - known)
    ]
    return render(
        request,
        "predictive/report.html",
        {
            "report": result,
            "versions": [queries.version_summary(m) for m in queries.versions()],
            "fields": fields,
            "can_change": request.user.has_perm(CHANGE),
            "can_train": role_of(request.user) == ADMIN,
        },
    )


@require_POST
@role_required(CHANGE)
def exclusions(request: HttpRequest) -> HttpResponse:
    chosen = request.POST.getlist("exclude")
    extra = [f.strip() for f in request.POST.get("extra", "").split(",") if f.strip()]
    saved = actions.set_excluded_fields([*chosen, *extra], actor=acting_user(request))
    messages.success(
        request,
        _("Excluded fields saved: %(fields)s. They take effect at the next training run.")
        % {"fields": ", ".join(saved) or _("none")},
    )
    return redirect("predictive:report")


@require_POST
@role_required(CHANGE)
def train(request: HttpRequest) -> HttpResponse:
    if role_of(request.user) != ADMIN:
        messages.error(request, _("Only an admin may train the model."))
        return redirect("predictive:report")
    from embudo.predictive.tasks import retrain

    retrain.enqueue()
    messages.success(
        request, _("Training started in the background; this page shows the new version when done.")
    )
    return redirect("predictive:report")


@require_POST
@role_required(CHANGE)
def activate(request: HttpRequest, version: int) -> HttpResponse:
    model = get_object_or_404(PredictiveModel.objects.defer("estimator"), pk=version)
    actions.activate_version(model, actor=acting_user(request))
    messages.success(request, _("Version %(version)s is active again.") % {"version": version})
    return redirect("predictive:report")
