from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "embudo.scoring"
    label = "scoring"
    verbose_name = _("Scoring")

    def ready(self) -> None:
        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER
        from embudo.crm import actions as crm
        from embudo.crm import importing
        from embudo.scoring import actions, fields
        from embudo.tracking import actions as tracking
        from embudo.web.navigation import register

        register(
            "scoring:settings", _("Scoring"), order=55, roles={ADMIN, MARKETING, SALES_MANAGER}
        )
        fields.register()
        tracking.AFTER_EVENTS.append(actions.after_events)
        crm.AFTER_CONTACT_CHANGE.append(actions.after_contact_change)
        crm.BEFORE_MERGE.append(actions.before_merge)
        importing.AFTER_IMPORT.append(actions.after_import)
