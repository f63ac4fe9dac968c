from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HandoffConfig(AppConfig):
    name = "embudo.handoff"
    label = "handoff"
    verbose_name = _("Handoff")

    def ready(self) -> None:
        pass
