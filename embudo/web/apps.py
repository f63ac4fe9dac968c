from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    name = "embudo.web"
    label = "web"
    verbose_name = _("Web")

    def ready(self) -> None:
        from embudo.web.navigation import register

        register("web:contacts", _("Contacts"), order=20)
        register("web:companies", _("Companies"), order=30)
