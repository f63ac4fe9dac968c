from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "embudo.handoff"
    label = "handoff"
    verbose_name = _("Handoff")

    def ready(self) -> None:
        from embudo.accounts.roles import ADMIN, MARKETING, SALES, SALES_MANAGER
        from embudo.web.navigation import register

        register("handoff:inbox", _("Leads"), order=25, roles={SALES, SALES_MANAGER, ADMIN})
        register("handoff:sla", _("SLA"), order=26, roles={ADMIN, MARKETING, SALES, SALES_MANAGER})
