from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DealsConfig(AppConfig):
    name = "embudo.deals"
    label = "deals"
    verbose_name = _("Deals")

    def ready(self) -> None:
        from embudo.accounts.roles import ADMIN, MARKETING, SALES, SALES_MANAGER
        from embudo.web.navigation import register

        sellers = {ADMIN, SALES, SALES_MANAGER}
        register("deals:board", _("Pipeline"), order=40, roles=sellers)
        register("deals:list", _("Deals"), order=41, roles=sellers)
        register("deals:forecast", _("Forecast"), order=42, roles=sellers)
        register("deals:plan", _("Plan"), order=43, roles=sellers | {MARKETING})
