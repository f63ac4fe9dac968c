"""`GET /api/v1/reports/{name}`: any registered report as JSON, with the CLI's parameters."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, principal
from embudo.errors import ValidationFailed
from embudo.reports import ReportError, get_report, report_names, run_report

router: Router = Router(tags=["reports"])


@router.get("/reports", summary="The reports there are")
def list_reports(request: HttpRequest) -> dict[str, Any]:
    principal(request).require(Scope.READ)
    items = []
    for name in report_names():
        spec = get_report(name)
        items.append(
            {
                "name": name,
                "description": spec.description,
                "options": [
                    {"name": o.name, "help": o.help, "choices": list(o.choices)}
                    for o in spec.options
                ],
            }
        )
    return {"items": items}


@router.get("/reports/{name}", summary="Run a report")
def get_report_json(request: HttpRequest, name: str) -> dict[str, Any]:
    """Query parameters: `from` and `to` (YYYY-MM-DD) and the report's own options (`by`…),
    as `embudo report NAME --from … --to …` takes them."""
    who = principal(request)
    try:
        spec = get_report(name)
    except ReportError as error:
        raise ApiError(404, "not_found", str(error)) from None
    if who.api_key is not None:
        who.require(Scope.READ)
    elif spec.permission:
        who.require_perm(spec.permission)
    else:
        who.require(Scope.READ)
    known = {"from", "to", *(o.name for o in spec.options)}
    unknown = sorted(set(request.GET) - known)
    if unknown:
        raise ValidationFailed(
            {
                u: [f"unknown parameter; report {name} takes {', '.join(sorted(known))}"]
                for u in unknown
            }
        )
    try:
        result = run_report(
            name,
            date_from=request.GET.get("from"),
            date_to=request.GET.get("to"),
            options={k: v for k, v in request.GET.items() if k not in ("from", "to")},
        )
    except ReportError as error:
        raise ValidationFailed.one("report", str(error)) from None
    return result.to_dict()
