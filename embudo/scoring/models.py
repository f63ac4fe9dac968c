"""Scoring models and their rules, each contact's current score per model, and its history.

Engagement decays with a half-life, so a stored number is only right at one moment. A contact's
engagement is kept *normalised* to the model's epoch ``t0``: ``engagement_norm = E(t) · 2^((t -
t0) / h)``, which no longer changes with time. The engagement now is
``engagement_norm · 2^(-(now - t0) / h)``, and "engagement now ≥ X" is the constant comparison
``engagement_norm ≥ X · 2^((now - t0) / h)``, which SQL (and an index) can answer.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import Contact


class RuleKind(models.TextChoices):
    FIT = "fit", _("Fit")
    ENGAGEMENT = "engagement", _("Engagement")


class ModelStatus(models.TextChoices):
    READY = "ready", _("Up to date")
    RESCORING = "rescoring", _("Rescoring…")
    FAILED = "failed", _("Last rescore failed")


class Band(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"


class ScoringModel(models.Model):
    """One way of scoring every contact (a company may keep one per product line)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=500, blank=True, default="")
    enabled = models.BooleanField(default=True)
    half_life_days = models.FloatField(default=30.0)
    # Caps: None means uncapped.
    fit_cap = models.FloatField(null=True, blank=True, default=50.0)
    engagement_cap = models.FloatField(null=True, blank=True, default=50.0)
    total_cap = models.FloatField(null=True, blank=True, default=100.0)
    # A total at or above band_a is band A, and so on; below band_c is band D.
    band_a = models.FloatField(default=70.0)
    band_b = models.FloatField(default=45.0)
    band_c = models.FloatField(default=20.0)
    # The MQL rule: (fit ≥ mql_fit and engagement ≥ mql_engagement) or total ≥ mql_total.
    # A half left empty never matches; both empty: this model promotes nobody.
    mql_fit = models.FloatField(null=True, blank=True)
    mql_engagement = models.FloatField(null=True, blank=True)
    mql_total = models.FloatField(null=True, blank=True)
    epoch = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.READY)
    # Bumped by every change of rules or settings; a background rescore carries the version it
    # was enqueued for, so a stale one gives way to the newer.
    version = models.PositiveIntegerField(default=1)
    rescored_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class ScoreRule(models.Model):
    """Points for contacts matching a condition (fit) or for events matching a filter
    (engagement: each match decays with the model's half-life)."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    name = models.CharField(max_length=128)
    condition = models.JSONField()
    points = models.FloatField()
    # Engagement only: a repeatable rule counts every matching event, up to max_points
    # (the most recent events count first); a one-off counts the most recent event only.
    repeatable = models.BooleanField(default=False)
    max_points = models.FloatField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "kind", "position", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.points:+g})"


class ContactScore(models.Model):
    """A contact's score under one model, as of its last computation (see the module note)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="scores")
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="scores")
    fit = models.FloatField(default=0.0)
    engagement_norm = models.FloatField(default=0.0)
    # {rule id: points} of the rules that counted; engagement points as of computed_at.
    reasons = models.JSONField(default=dict, blank=True)
    # Whether the contact met the MQL rule when last computed: only a new crossing promotes.
    qualified = models.BooleanField(default=False)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "model"], name="score_one_per_model"),
        ]
        indexes = [
            models.Index(fields=["model", "fit"], name="score_model_fit"),
            models.Index(fields=["model", "engagement_norm"], name="score_model_engagement"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}/{self.model_id}: fit {self.fit:g}"


class ScoreHistory(models.Model):
    """A contact's score under a model whenever its rules-driven value changed, with why."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="score_history")
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(default=timezone.now)
    fit = models.FloatField()
    engagement = models.FloatField()
    total = models.FloatField()
    band = models.CharField(max_length=1, choices=Band.choices)
    # [[rule name, points], …], the largest first.
    reasons = models.JSONField(default=list, blank=True)
    cause = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "score history"
        indexes = [models.Index(fields=["contact", "model", "at"], name="score_history_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id}/{self.model_id} at {self.at:%Y-%m-%d %H:%M}"
