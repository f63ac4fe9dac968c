from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "embudo.analytics"
    label = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from embudo.analytics import dashboard
        from embudo.web.navigation import register

        register("analytics:dashboard", _("Dashboard"), order=5)
        dashboard.register_all()
