"""Segments (dynamic by conditions, or static lists) and personas with their stored assignment."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import Contact


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("Dynamic")
    STATIC = "static", _("Static list")


class Segment(models.Model):
    """A named set of contacts: a dynamic segment is its conditions, evaluated when read, so it
    is always current; a static list holds the members someone added."""

    name = models.CharField(max_length=128, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=SegmentKind.choices)
    # The condition language's JSON (see embudo/segments/conditions/); {} for static lists.
    conditions = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A contact in a static list."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segment_member_unique"),
        ]
        indexes = [models.Index(fields=["contact"], name="segment_member_contact")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.contact_id}"


class Persona(models.Model):
    """A buyer archetype assigned by conditions; a contact gets the first matching persona by
    ``priority`` (lowest first, then oldest)."""

    name = models.CharField(max_length=128, unique=True)
    description = models.TextField(blank=True, default="")
    conditions = models.JSONField(default=dict)
    priority = models.PositiveIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name


class PersonaAssignment(models.Model):
    """The persona a contact has now; kept current when personas, contacts or events change, so
    reading and filtering by persona is a plain join."""

    contact = models.OneToOneField(
        Contact, primary_key=True, on_delete=models.CASCADE, related_name="persona_assignment"
    )
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="assignments")
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["persona", "contact"], name="persona_assignment_persona")]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.persona_id}"
