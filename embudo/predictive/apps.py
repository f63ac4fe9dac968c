from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PredictiveConfig(AppConfig):
    name = "embudo.predictive"
    label = "predictive"
    verbose_name = _("Predictive scoring")

    def ready(self) -> None:
        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER
        from embudo.web.navigation import register

        register("predictive:report", _("Model"), order=56, roles={ADMIN, MARKETING, SALES_MANAGER})
        _register_condition_field()


def _register_condition_field() -> None:
    """`predicted_conversion` in the condition language (segments, personas, routing)."""
    from embudo.segments.conditions import NUMBER, column_field, register_field

    register_field(
        "predicted_conversion",
        column_field("prediction__probability", NUMBER, label=str(_("predicted conversion"))),
    )
