from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "embudo.automation"
    label = "automation"
    verbose_name = _("Automation and e-mail")

    def ready(self) -> None:
        from anymail.signals import tracking

        from embudo.accounts.roles import ADMIN, MARKETING
        from embudo.automation.bounces import anymail_tracking
        from embudo.web.navigation import register

        # Bounces and complaints a provider reports to its anymail webhook.
        tracking.connect(anymail_tracking, dispatch_uid="embudo.automation.bounces")
        register(
            "automation:subscription_types",
            _("Subscriptions"),
            order=72,
            roles={ADMIN, MARKETING},
        )
