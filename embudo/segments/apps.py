from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "embudo.segments"
    label = "segments"
    verbose_name = _("Segments")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, sync_role_groups
        from embudo.web.navigation import register

        # Roles get this app's permissions once its tables exist.
        post_migrate.connect(sync_role_groups, sender=self)
        register("segments:list", _("Segments"), order=50, roles={ADMIN, MARKETING, SALES_MANAGER})
