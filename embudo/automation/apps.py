from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "embudo.automation"
    label = "automation"
    verbose_name = _("Automation and e-mail")

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.db.models.signals import post_migrate

        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, sync_role_groups
        from embudo.automation.bounces import anymail_tracking
        from embudo.web.navigation import register

        # Roles get this app's permissions once its tables exist.
        post_migrate.connect(sync_role_groups, sender=self)
        # Bounces and complaints a provider reports to its anymail webhook.
        tracking.connect(anymail_tracking, dispatch_uid="embudo.automation.bounces")
        register(
            "automation:sends", _("E-mail sends"), order=55, roles={ADMIN, MARKETING, SALES_MANAGER}
        )
        register("automation:templates", _("E-mail templates"), order=56, roles={ADMIN, MARKETING})
        register(
            "automation:subscription_types",
            _("Subscriptions"),
            order=72,
            roles={ADMIN, MARKETING},
        )
