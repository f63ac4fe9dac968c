"""The four roles, as Django groups with model permissions, and who may see which contacts."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import models

from embudo.accounts.actors import System, Viewer

ADMIN = "admin"
MARKETING = "marketing"
SALES = "sales"
SALES_MANAGER = "sales_manager"
ROLES = (ADMIN, MARKETING, SALES, SALES_MANAGER)

_CRM = ("contact", "company", "activity", "lifecycletransition", "propertydefinition")
_ALL = ("view", "add", "change", "delete")

# Model permissions per role. Which *rows* a sales rep sees is narrowed further by
# `visible_contacts`; deals are added to these lists by the deals app.
ROLE_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    ADMIN: {model: _ALL for model in (*_CRM, "apikey", "auditentry")},
    MARKETING: {model: _ALL for model in _CRM},
    SALES: {
        "contact": ("view", "add", "change"),
        "company": ("view", "add", "change"),
        "activity": _ALL,
        "lifecycletransition": ("view",),
        "propertydefinition": ("view",),
    },
    SALES_MANAGER: {
        "contact": _ALL,
        "company": _ALL,
        "activity": _ALL,
        "lifecycletransition": ("view",),
        "propertydefinition": ("view",),
    },
}

# Deals: reps work their own deals; managers run pipelines, teams and goals; admins also set
# exchange rates. Marketing sees no deal, only the goals and the plan that set its MQL target.
_DEAL_SETUP = ("pipeline", "stage", "productline", "lostreason", "salesteam", "teammembership")
ROLE_PERMISSIONS[ADMIN].update(
    {m: _ALL for m in ("deal", "dealstagechange", "goal", "exchangerate", "dealsettings")}
    | {m: _ALL for m in _DEAL_SETUP}
)
ROLE_PERMISSIONS[SALES_MANAGER].update(
    {"deal": _ALL, "dealstagechange": ("view",), "goal": _ALL}
    | {m: _ALL for m in _DEAL_SETUP}
    | {"exchangerate": ("view",), "dealsettings": ("view",)}
)
ROLE_PERMISSIONS[SALES].update(
    {"deal": ("view", "add", "change"), "dealstagechange": ("view",), "goal": ("view",)}
    | {m: ("view",) for m in (*_DEAL_SETUP, "exchangerate", "dealsettings")}
)
ROLE_PERMISSIONS[MARKETING].update({"goal": ("view",)})


# Capture: marketing and admins run forms, site keys, channel rules and campaigns; every role
# sees the events and touchpoints of the contacts it may see.
_CAPTURE_SETUP = ("form", "sitekey", "channelrule", "campaign")
_CAPTURE_DATA = ("event", "touchpoint", "visitor")
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role].update(
        {m: _ALL for m in _CAPTURE_SETUP} | {m: ("view",) for m in _CAPTURE_DATA}
    )
for _role in (SALES, SALES_MANAGER):
    ROLE_PERMISSIONS[_role].update({m: ("view",) for m in (*_CAPTURE_DATA, "campaign")})


# Segments and personas (the segments app adds its models here).
# Marketing and admins define segments and personas; sales managers build segments too (for
# routing and lists) and read personas; every role sees the persona a contact has.
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role].update(
        {m: _ALL for m in ("segment", "segmentmember", "persona")}
        | {"personaassignment": ("view",)}
    )
ROLE_PERMISSIONS[SALES_MANAGER].update(
    {"segment": _ALL, "segmentmember": _ALL}
    | {m: ("view",) for m in ("persona", "personaassignment")}
)
ROLE_PERMISSIONS[SALES].update({m: ("view",) for m in ("persona", "personaassignment")})

# Scoring rules and models (the scoring app adds its models here).
# Marketing and admins set the scoring models and rules; sales managers read them (the MQL
# threshold is part of the SLA); every role sees the scores of the contacts it may see.
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role].update(
        {"scoringmodel": _ALL, "scorerule": _ALL}
        | {m: ("view",) for m in ("contactscore", "scorehistory")}
    )
ROLE_PERMISSIONS[SALES_MANAGER].update(
    {m: ("view",) for m in ("scoringmodel", "scorerule", "contactscore", "scorehistory")}
)
ROLE_PERMISSIONS[SALES].update({m: ("view",) for m in ("contactscore", "scorehistory")})

# Predictive scoring (the predictive app adds its models here).
# Everyone who plans the funnel reads the model and its report; admins and marketing choose the
# fields it may not learn from; predictions are read by every role that sees contacts.
for _role in (ADMIN, MARKETING, SALES_MANAGER):
    ROLE_PERMISSIONS[_role].update({"predictivemodel": ("view",), "predictivesettings": ("view",)})
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role]["predictivesettings"] = ("view", "change")
for _role in ROLES:
    ROLE_PERMISSIONS[_role]["prediction"] = ("view",)

# Handoff, SLA and feedback (the handoff app adds its models here). Admins and sales managers
# keep the settings; marketing owns its commitments; reps work their leads and give feedback.
_HANDOFF_SETUP = (
    "assignmentrule",
    "slapolicy",
    "businesshours",
    "holiday",
    "feedbackreason",
    "repavailability",
    "teamrouting",
)
_HANDOFF_WORK = ("handoff", "feedback", "notification", "marketingcommitment")
for _role in (ADMIN, SALES_MANAGER):
    ROLE_PERMISSIONS[_role].update({m: _ALL for m in (*_HANDOFF_SETUP, *_HANDOFF_WORK)})
ROLE_PERMISSIONS[SALES].update(
    {m: ("view",) for m in (*_HANDOFF_SETUP, "marketingcommitment")}
    | {"handoff": ("view", "change"), "feedback": ("view", "add"), "notification": ("view",)}
)
ROLE_PERMISSIONS[MARKETING].update(
    {m: ("view",) for m in (*_HANDOFF_SETUP, "handoff", "feedback", "notification")}
    | {"marketingcommitment": _ALL}
)

# Analytics (the analytics app adds its models here).
# Marketing and admins record campaign spend (costs); sales managers read it beside the ROI.
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role]["cost"] = _ALL
ROLE_PERMISSIONS[SALES_MANAGER]["cost"] = ("view",)

# E-mail templates and the brand (the automation app adds its models here). Marketing and
# admins write templates and keep the brand; the sales side reads the templates it may send.
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role].update({m: _ALL for m in ("emailtemplate", "templateversion")})
    ROLE_PERMISSIONS[_role]["brand"] = ("view", "change")
for _role in (SALES, SALES_MANAGER):
    ROLE_PERMISSIONS[_role].update({m: ("view",) for m in ("emailtemplate", "templateversion")})
# E-mail consent (the automation app adds its models here). Marketing and admins keep the
# subscription types and the suppression list; every role sees a contact's subscriptions and
# consent ledger, and records what a contact asked for (a phone call's opt-out).
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role].update(
        {"subscriptiontype": _ALL, "suppression": _ALL, "bounce": ("view",)}
    )
for _role in (SALES, SALES_MANAGER):
    ROLE_PERMISSIONS[_role].update({"subscriptiontype": ("view",)})
for _role in ROLES:
    ROLE_PERMISSIONS[_role].update(
        {"subscription": ("view", "add", "change"), "consentrecord": ("view",)}
    )
# E-mail sends (the automation app adds its models here). Marketing and admins run broadcasts;
# sales managers follow them; deliveries are read by whoever reads the sends.
for _role in (ADMIN, MARKETING):
    ROLE_PERMISSIONS[_role].update({"send": _ALL, "delivery": ("view",)})
ROLE_PERMISSIONS[SALES_MANAGER].update({"send": ("view",), "delivery": ("view",)})


def sync_role_groups(**_: Any) -> None:
    """Create the role groups and give them exactly their permissions (runs after migrate)."""
    # post_migrate reaches this app before the apps listed after it (crm…) have their
    # permissions on a fresh database; create every app's first, so no role comes out short.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for role, models_perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        codenames = [
            f"{action}_{model}" for model, actions in models_perms.items() for action in actions
        ]
        group.permissions.set(Permission.objects.filter(codename__in=codenames))


def role_of(user: Viewer | None) -> str | None:
    if user is None or isinstance(user, System) or not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return ADMIN
    cached = getattr(user, "_embudo_role", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = next((role for role in ROLES if role in names), "")
        setattr(user, "_embudo_role", cached)  # noqa: B010  (kept on this request's user)
    return cached or None


def sees_all_contacts(user: Viewer | None) -> bool:
    return role_of(user) in {ADMIN, MARKETING, SALES_MANAGER}


def contact_visibility(user: Viewer | None) -> models.Q:
    """The rows of `Contact` this user may see: sales reps see their own and unassigned ones."""
    branches = contact_visibility_branches(user)
    if not branches:
        return models.Q(pk__in=[])
    visible = branches[0]
    for branch in branches[1:]:
        visible |= branch
    return visible


def contact_visibility_branches(user: Viewer | None) -> list[models.Q]:
    """`contact_visibility` as the conditions it is the union of (none: sees nothing).

    Each branch is served by one index, so a page of newest contacts can be read branch by
    branch instead of sorting every visible contact (see crm.queries.contact_rows).
    """
    role = role_of(user)
    if role in {ADMIN, MARKETING, SALES_MANAGER}:
        return [models.Q()]
    if role == SALES:
        return [models.Q(owner=user), models.Q(owner__isnull=True)]
    return []
