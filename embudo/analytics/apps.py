from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "embudo.analytics"
    label = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from embudo.web.navigation import register

        register("analytics:dashboard", _("Dashboard"), order=5)
        post_migrate.connect(_install_stamps, dispatch_uid="analytics_install_stamps")


def _install_stamps(sender: Any, using: str = "default", **kwargs: Any) -> None:
    # After every migrate (and flush): the triggers that keep the reports' data stamps, which a
    # rebuilt table would have lost (see embudo.analytics.stamps).
    if sender.label != "analytics":
        return
    from embudo.analytics import stamps

    stamps.install(using)
