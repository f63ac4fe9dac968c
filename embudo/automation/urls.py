"""The automation app's pages (under /email/) and the public links messages carry (under /e/)."""

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path

from embudo.automation import consent_views, send_views, views_templates, views_tracking

app_name = "automation"

urlpatterns: list[URLPattern | URLResolver] = [
    # Public links a message carries (signed; see links.py).
    path("e/o/<int:delivery>/<str:signature>", views_tracking.open_pixel, name="open"),
    path("e/c/<int:delivery>/<int:link>/<str:signature>", views_tracking.click, name="click"),
    path("e/u/<int:delivery>/<str:signature>/", consent_views.unsubscribe, name="unsubscribe"),
    path("e/p/<int:contact>/<str:signature>/", consent_views.preferences, name="preferences"),
    path("e/confirm/<str:token>/", consent_views.confirm, name="confirm"),
    # Templates and the brand.
    path("email/brand/", views_templates.brand, name="brand"),
    path("email/templates/", views_templates.template_list, name="templates"),
    path("email/templates/new/", views_templates.template_new, name="template_new"),
    path("email/templates/<int:template_id>/", views_templates.template_edit, name="template"),
    path(
        "email/templates/<int:template_id>/versions/<int:number>/",
        views_templates.version_detail,
        name="template_version",
    ),
    path(
        "email/templates/<int:template_id>/archive/",
        views_templates.template_archive,
        name="template_archive",
    ),
    path(
        "email/templates/<int:template_id>/test/",
        views_templates.template_test_send,
        name="template_test",
    ),
    # Sends.
    path("email/sends/", send_views.send_list, name="sends"),
    path("email/sends/new/", send_views.send_new, name="send_new"),
    path("email/sends/<int:send_id>/", send_views.send_detail, name="send"),
    path("email/sends/<int:send_id>/pause/", send_views.send_pause, name="send_pause"),
    path("email/sends/<int:send_id>/resume/", send_views.send_resume, name="send_resume"),
    path("email/sends/<int:send_id>/cancel/", send_views.send_cancel, name="send_cancel"),
    # Consent: subscription types, suppressions, a contact's subscriptions.
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

# A provider's bounce and complaint webhooks (django-anymail's tracking signal reaches
# bounces.anymail_tracking), served only once their secret is configured.
if settings.ANYMAIL.get("WEBHOOK_SECRET"):
    urlpatterns.append(path("anymail/", include("anymail.urls")))
