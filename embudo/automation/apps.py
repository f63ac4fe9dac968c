from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "embudo.automation"
    label = "automation"
    verbose_name = _("Automation and e-mail")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, sync_role_groups
        from embudo.web.navigation import register

        # Roles get this app's permissions once its tables exist.
        post_migrate.connect(sync_role_groups, sender=self)
        register(
            "automation:sends", _("E-mail sends"), order=55, roles={ADMIN, MARKETING, SALES_MANAGER}
        )
