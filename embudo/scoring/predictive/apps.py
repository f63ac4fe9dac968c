from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PredictiveConfig(AppConfig):
    name = "embudo.scoring.predictive"
    label = "predictive"
    verbose_name = _("Predictive scoring")

    def ready(self) -> None:
        pass
