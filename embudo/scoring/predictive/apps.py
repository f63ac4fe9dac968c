from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PredictiveConfig(AppConfig):
    name = "embudo.scoring.predictive"
    label = "predictive"
    verbose_name = _("Predictive scoring")

    def ready(self) -> None:
        from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER
        from embudo.crm import actions as crm_actions
        from embudo.crm import importing
        from embudo.scoring.predictive import hooks
        from embudo.tracking import actions as tracking_actions
        from embudo.web.navigation import register

        register("predictive:report", _("Model"), order=56, roles={ADMIN, MARKETING, SALES_MANAGER})
        crm_actions.AFTER_CONTACT_CHANGE.append(hooks.contacts_changed)
        crm_actions.AFTER_STAGE_CHANGE.append(hooks.stage_changed)
        crm_actions.BEFORE_MERGE.append(hooks.before_merge)
        tracking_actions.AFTER_EVENTS.append(hooks.contacts_changed)
        importing.AFTER_IMPORT.append(hooks.import_finished)
        _register_condition_field()


def _register_condition_field() -> None:
    """`predicted_conversion` in the condition language (segments, personas, routing)."""
    from embudo.segments.conditions import NUMBER, column_field, register_field

    register_field(
        "predicted_conversion",
        column_field("prediction__probability", NUMBER, label=str(_("predicted conversion"))),
    )
