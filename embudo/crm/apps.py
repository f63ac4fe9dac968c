from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "embudo.crm"
    label = "crm"
    verbose_name = _("CRM")

    def ready(self) -> None:
        from embudo.web.navigation import register

        register("crm:contacts", _("Contacts"), order=20)
        register("crm:companies", _("Companies"), order=30)
