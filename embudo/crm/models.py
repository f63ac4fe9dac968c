"""Contacts, companies, custom properties, activities and the lifecycle history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", _("Subscriber")
    LEAD = "lead", _("Lead")
    MQL = "mql", _("MQL")
    SQL = "sql", _("SQL")
    OPPORTUNITY = "opportunity", _("Opportunity")
    CUSTOMER = "customer", _("Customer")
    EVANGELIST = "evangelist", _("Evangelist")
    DISQUALIFIED = "disqualified", _("Disqualified")


# The funnel's order; `disqualified` stands outside it.
FUNNEL_ORDER: tuple[str, ...] = (
    LifecycleStage.SUBSCRIBER,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
    LifecycleStage.EVANGELIST,
)


class LeadStatus(models.TextChoices):
    NEW = "new", _("New")
    ATTEMPTING = "attempting", _("Attempting")
    CONNECTED = "connected", _("Connected")
    QUALIFIED = "qualified", _("Qualified")
    UNQUALIFIED = "unqualified", _("Unqualified")
    RECYCLED = "recycled", _("Recycled")


class TransitionCause(models.TextChoices):
    IMPORT = "import", _("Import")
    MANUAL = "manual", _("Manual")
    API = "api", _("API")
    RULE = "rule", _("Rule")
    WORKFLOW = "workflow", _("Workflow")
    FEEDBACK = "feedback", _("Feedback")
    MERGE = "merge", _("Merge")


class ObjectType(models.TextChoices):
    CONTACT = "contact", _("Contact")
    COMPANY = "company", _("Company")


class PropertyType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    BOOLEAN = "boolean", _("Boolean")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")


class PropertyDefinition(models.Model):
    """The registry of custom properties: values live in the record's ``properties`` JSON."""

    object_type = models.CharField(max_length=16, choices=ObjectType.choices)
    name = models.SlugField(max_length=64)
    label = models.CharField(max_length=128)
    type = models.CharField(max_length=16, choices=PropertyType.choices)
    choices = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["object_type", "name"], name="property_unique_name"),
        ]
        ordering = ["object_type", "name"]

    def __str__(self) -> str:
        return f"{self.object_type}.{self.name} ({self.type})"


class Company(models.Model):
    name = models.CharField(max_length=255)
    domain = models.CharField(max_length=255, blank=True, default="", db_index=True)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    industry = models.CharField(max_length=128, blank=True, default="")
    employees = models.PositiveIntegerField(null=True, blank=True)
    country = models.CharField(max_length=64, blank=True, default="")
    city = models.CharField(max_length=128, blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=models.Q(external_id__isnull=False),
                name="company_unique_external_id",
            ),
        ]
        indexes = [models.Index(Lower("name"), name="company_name_lower")]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    # Stored lower-cased (a check constraint holds us to it), so a plain partial unique index
    # makes the address unique case-insensitively and serves exact look-ups.
    email = models.EmailField(max_length=254, null=True, blank=True)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    first_name = models.CharField(max_length=128, blank=True, default="")
    last_name = models.CharField(max_length=128, blank=True, default="")
    phone = models.CharField(max_length=64, blank=True, default="")
    job_title = models.CharField(max_length=255, blank=True, default="")
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_contacts",
    )
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.SUBSCRIBER
    )
    lifecycle_stage_changed_at = models.DateTimeField(default=timezone.now)
    lead_status = models.CharField(
        max_length=16, choices=LeadStatus.choices, blank=True, default=""
    )
    original_source = models.CharField(max_length=128, blank=True, default="")
    original_medium = models.CharField(max_length=128, blank=True, default="")
    original_campaign = models.CharField(max_length=255, blank=True, default="")
    # The language to write to the contact in ("en", "es"); None: the site's default. Nullable
    # so adding it is one ALTER TABLE, not a copy of every contact.
    language = models.CharField(max_length=8, null=True, blank=True, choices=settings.LANGUAGES)
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["email"],
                condition=models.Q(email__isnull=False),
                name="contact_unique_email",
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=models.Q(external_id__isnull=False),
                name="contact_unique_external_id",
            ),
            models.CheckConstraint(
                condition=models.Q(email__isnull=True) | models.Q(email=Lower("email")),
                name="contact_email_lowercase",
            ),
        ]
        indexes = [
            models.Index(fields=["lifecycle_stage", "id"], name="contact_stage"),
            models.Index(fields=["owner", "id"], name="contact_owner"),
            models.Index(fields=["updated_at", "id"], name="contact_updated"),
            models.Index(fields=["company"], name="contact_company"),
            models.Index(Lower("last_name"), Lower("first_name"), name="contact_name_lower"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"Contact {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class LifecycleTransition(models.Model):
    """One move of a contact between lifecycle stages; the history keeps every move."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, blank=True)
    to_stage = models.CharField(max_length=16, choices=LifecycleStage.choices)
    changed_at = models.DateTimeField(default=timezone.now)
    cause = models.CharField(max_length=16, choices=TransitionCause.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["changed_at", "id"]
        # Both cover the funnel reports' reads (embudo.analytics.funnel): who entered a stage
        # in a period, then those contacts' moves in order, without touching the table. The
        # stage index carries the from-stage for attribution and ROI, which read a stage's
        # entries by where they came from (a new lead, not a customer back from evangelist).
        indexes = [
            models.Index(
                fields=["contact", "changed_at", "id", "to_stage", "from_stage"],
                name="transition_contact",
            ),
            models.Index(
                fields=["to_stage", "changed_at", "contact", "from_stage"],
                name="transition_stage_from",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.from_stage or '—'} → {self.to_stage}"


class ActivityKind(models.TextChoices):
    NOTE = "note", _("Note")
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("Email")
    TASK = "task", _("Task")


class Activity(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=16, choices=ActivityKind.choices)
    subject = models.CharField(max_length=255, blank=True, default="")
    body = models.TextField(blank=True, default="")
    occurred_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    done = models.BooleanField(default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["contact", "occurred_at"], name="activity_contact")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"
