from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScoringConfig(AppConfig):
    name = "embudo.scoring"
    label = "scoring"
    verbose_name = _("Scoring")

    def ready(self) -> None:
        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER
        from embudo.scoring import fields
        from embudo.web.navigation import register

        register(
            "scoring:settings", _("Scoring"), order=55, roles={ADMIN, MARKETING, SALES_MANAGER}
        )
        fields.register()
