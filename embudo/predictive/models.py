"""Versions of the predictive model, the admin's settings for it, and each open contact's
latest prediction with its reasons."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import Contact


class Algorithm(models.TextChoices):
    LOGISTIC = "logistic", _("Regularised logistic regression")
    BOOSTING = "boosting", _("Gradient boosting")


class PredictiveModel(models.Model):
    """One trained version: what it learnt from, how it scored on contacts it never saw, and
    the calibrated estimator itself. Exactly one version at most is active."""

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices)
    # The feature specification (fields, their columns, categories, baselines): scoring
    # rebuilds the same matrix from it.
    features = models.JSONField(default=list)
    excluded_fields = models.JSONField(default=list)
    # Cross-validation per candidate, held-out figures, calibration table, deciles, leakage flags.
    metrics = models.JSONField(default=dict)
    outcomes = models.PositiveIntegerField(default=0)
    positives = models.PositiveIntegerField(default=0)
    estimator = models.BinaryField()
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="predictive_one_active_model",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.pk} ({self.algorithm})"

    @property
    def version(self) -> int:
        return int(self.pk or 0)


class PredictiveSettings(models.Model):
    """The one row of settings: fields an admin keeps out of the model, when to retrain, and
    what the last training run said (a refused run keeps the previous model)."""

    excluded_fields = models.JSONField(default=list, blank=True)
    # A background retrain starts once this many new outcomes arrived since the active version.
    retrain_after = models.PositiveIntegerField(default=200)
    retrain_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_ok = models.BooleanField(default=True)
    last_run_message = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "predictive settings"

    def __str__(self) -> str:
        return "predictive settings"


class Prediction(models.Model):
    """An open contact's probability of becoming a customer, and the signed reasons behind it,
    as the active model last scored it."""

    contact = models.OneToOneField(
        Contact, primary_key=True, on_delete=models.CASCADE, related_name="prediction"
    )
    model = models.ForeignKey(PredictiveModel, on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField()
    # [{"field", "label", "value", "contribution"}], strongest first; contribution in log-odds.
    reasons = models.JSONField(default=list)
    scored_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["probability"], name="prediction_probability")]

    def __str__(self) -> str:
        return f"contact {self.contact_id}: {self.probability:.3f}"
