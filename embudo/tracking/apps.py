from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrackingConfig(AppConfig):
    name = "embudo.tracking"
    label = "tracking"
    verbose_name = _("Tracking")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, sync_role_groups
        from embudo.web.navigation import register

        # The role groups are synced after the accounts app migrates, before this app's
        # permissions exist; syncing again after ours gives the roles their tracking permissions.
        post_migrate.connect(sync_role_groups, sender=self)
        register(
            "tracking:sources", _("Sources"), order=40, roles={ADMIN, MARKETING, SALES_MANAGER}
        )
        register("tracking:settings", _("Capture"), order=80, roles={ADMIN, MARKETING})
