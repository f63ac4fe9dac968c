"""E-mail: the brand, templates and their immutable versions, sends and one delivery per
(send, contact), subscription types with each contact's state, the consent ledger and the
suppression list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import Contact
from embudo.segments.models import Segment


class Brand(models.Model):
    """How every message looks and who it comes from; one row (``pk=1``)."""

    name = models.CharField(max_length=128, default="Embudo")
    logo_url = models.URLField(max_length=500, blank=True, default="")
    primary_color = models.CharField(max_length=7, default="#1f6feb")
    background_color = models.CharField(max_length=7, default="#f4f5f7")
    text_color = models.CharField(max_length=7, default="#1b1f24")
    # The law (CAN-SPAM, LSSI in Spain) asks for the sender's postal address in marketing mail:
    # a broadcast is refused until it is set.
    postal_address = models.CharField(max_length=500, blank=True, default="")
    footer = models.TextField(blank=True, default="")
    from_name = models.CharField(max_length=128, blank=True, default="")
    from_email = models.EmailField(max_length=254, blank=True, default="")
    reply_to = models.EmailField(max_length=254, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class SubscriptionType(models.Model):
    """A kind of mail a contact can take or leave (newsletter, product news, events…)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    name_es = models.CharField(max_length=128, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    description_es = models.CharField(max_length=500, blank=True, default="")
    # True: only contacts who opted in get it (consent). False: contacts get it unless they
    # opted out (an existing customer's product news, where the law allows it).
    opt_in_required = models.BooleanField(default=True)
    # An opt-in from a form stays pending until the contact confirms it from an e-mail.
    double_opt_in = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def localized_name(self) -> str:
        """The name in the active language (Spanish when it has one, English otherwise)."""
        if translation.get_language() == "es" and self.name_es:
            return self.name_es
        return self.name

    @property
    def localized_description(self) -> str:
        if translation.get_language() == "es" and self.description_es:
            return self.description_es
        return self.description


class SubscriptionStatus(models.TextChoices):
    SUBSCRIBED = "subscribed", _("Subscribed")
    PENDING = "pending", _("Waiting for confirmation")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")


class Subscription(models.Model):
    """A contact's current state for one subscription type (the ledger keeps how it got there)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions")
    subscription_type = models.ForeignKey(
        SubscriptionType, on_delete=models.CASCADE, related_name="subscriptions"
    )
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "subscription_type"], name="subscription_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["subscription_type", "status"], name="subscription_type_status")
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.subscription_type_id} {self.status}"


class ConsentAction(models.TextChoices):
    SUBSCRIBE = "subscribe", _("Subscribed")
    REQUEST = "request", _("Asked to subscribe (waiting for confirmation)")
    CONFIRM = "confirm", _("Confirmed the subscription")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")


class ConsentSource(models.TextChoices):
    FORM = "form", _("Form")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    DOUBLE_OPT_IN = "double_opt_in", _("Double opt-in confirmation")
    PREFERENCES = "preferences", _("Preference page")
    ONE_CLICK = "one_click", _("One-click unsubscribe")
    COMPLAINT = "complaint", _("Spam complaint")
    MANUAL = "manual", _("Changed by a user")


class ConsentRecord(models.Model):
    """One line of the consent ledger: what a contact agreed to or withdrew, when, where and
    with which words. Never changed or deleted (but with the contact, on erasure)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    email = models.EmailField(max_length=254, blank=True, default="")
    # None: every marketing e-mail (an unsubscribe from all).
    subscription_type = models.ForeignKey(
        SubscriptionType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=16, choices=ConsentAction.choices)
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    # The consent text the contact saw (a form's checkbox label), or what happened.
    text = models.TextField(blank=True, default="")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["contact", "at"], name="consent_contact_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.contact_id} {self.action} ({self.source})"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
    COMPLAINT = "complaint", _("Spam complaint")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed from all e-mail")
    MANUAL = "manual", _("Added by a user")


class Suppression(models.Model):
    """An address that is never mailed again, whatever send or workflow asks."""

    # Stored lower-cased, like a contact's.
    email = models.EmailField(max_length=254, unique=True)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class EmailTemplate(models.Model):
    """A message marketing writes once and sends many times; what it says lives in its
    versions, so what was sent is always what was shown."""

    name = models.CharField(max_length=128, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    # What kind of mail it is: only contacts subscribed to the type get it.
    subscription_type = models.ForeignKey(
        SubscriptionType, on_delete=models.PROTECT, related_name="templates"
    )
    current = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One saved state of a template, never changed: per language (``en``, ``es``) what the
    author wrote (subject, preheader, body) and what it compiles to (the responsive HTML with
    the brand, CSS inlined, and the plain-text part), both still holding the personal fields."""

    template = models.ForeignKey(EmailTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.JSONField(default=dict)
    compiled = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"


class SendState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    RUNNING = "running", _("Sending")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    DONE = "done", _("Sent")


class Send(models.Model):
    """A broadcast of one template version to a segment or static list. Its recipients are
    frozen when it starts: one delivery each."""

    name = models.CharField(max_length=255)
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="sends")
    version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="sends"
    )
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=SendState.choices, default=SendState.DRAFT)
    recipients = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class DeliveryState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    CLAIMED = "claimed", _("Being prepared")
    SENDING = "sending", _("Handed to the mail server")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")


class Delivery(models.Model):
    """One message to one contact: claimed in the database before the mail server is told, and
    marked once it answered, so a worker that dies never sends it twice nor leaves it unsent."""

    send = models.ForeignKey(
        Send, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    email = models.EmailField(max_length=254)
    # The part of the address after the @: the per-domain rate limit counts by it.
    domain = models.CharField(max_length=253, blank=True, default="")
    language = models.CharField(max_length=8, default="en")
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.QUEUED
    )
    skip_reason = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    # Which worker holds it, since when: a claim older than the lease is a dead worker's.
    claim = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["send", "contact"],
                condition=models.Q(send__isnull=False, contact__isnull=False),
                name="delivery_once_per_send",
            ),
        ]
        indexes = [
            models.Index(fields=["send", "state", "id"], name="delivery_send_state"),
            models.Index(fields=["state", "retry_at"], name="delivery_state_retry"),
            models.Index(fields=["contact", "created_at"], name="delivery_contact"),
            models.Index(fields=["domain", "claimed_at"], name="delivery_domain_claimed"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.state})"


class BounceKind(models.TextChoices):
    HARD = "hard", _("Hard bounce")
    SOFT = "soft", _("Soft bounce")
    COMPLAINT = "complaint", _("Spam complaint")


class Bounce(models.Model):
    """One bounce or complaint that came back for an address (through the VERP return path,
    ``embudo mail-in`` or a provider's webhook): what the suppression list acts on."""

    email = models.EmailField(max_length=254)
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="bounces"
    )
    kind = models.CharField(max_length=16, choices=BounceKind.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["email", "created_at"], name="bounce_email_at")]

    def __str__(self) -> str:
        return f"{self.email} {self.kind}"


class FormSubscription(models.Model):
    """A form whose consent checkbox, when ticked, subscribes the contact to a type."""

    form = models.ForeignKey("tracking.Form", on_delete=models.CASCADE, related_name="+")
    subscription_type = models.ForeignKey(
        SubscriptionType, on_delete=models.CASCADE, related_name="forms"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["form", "subscription_type"], name="form_subscription_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.form_id} → {self.subscription_type_id}"
