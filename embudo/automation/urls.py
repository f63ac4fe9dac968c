"""The automation app's pages (under /email/) and the public links messages carry (under /e/)."""

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path

from embudo.automation import consent_views

app_name = "automation"

urlpatterns: list[URLPattern | URLResolver] = [
    # consent: the public links a message carries (signed; see links.py)
    path("e/u/<int:delivery>/<str:signature>/", consent_views.unsubscribe, name="unsubscribe"),
    path("e/p/<int:contact>/<str:signature>/", consent_views.preferences, name="preferences"),
    path("e/confirm/<str:token>/", consent_views.confirm, name="confirm"),
    # consent: pages
    path(
        "email/subscription-types/",
        consent_views.subscription_types,
        name="subscription_types",
    ),
    path(
        "email/subscription-types/<int:type_id>/",
        consent_views.subscription_type_edit,
        name="subscription_type",
    ),
    path("email/suppressions/", consent_views.suppressions, name="suppressions"),
    path(
        "email/suppressions/<int:suppression_id>/remove/",
        consent_views.suppression_remove,
        name="suppression_remove",
    ),
    path(
        "email/contacts/<int:contact_id>/subscriptions/",
        consent_views.contact_subscriptions,
        name="contact_subscriptions",
    ),
]

# consent: a provider's bounce and complaint webhooks (django-anymail's tracking signal reaches
# bounces.anymail_tracking), served only once their secret is configured.
if settings.ANYMAIL.get("WEBHOOK_SECRET"):
    urlpatterns.append(path("anymail/", include("anymail.urls")))
