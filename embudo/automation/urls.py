"""The automation app's pages (under /email/) and the public links messages carry (under /e/)."""

from django.urls import URLPattern, path

from embudo.automation import views_consent_links, views_templates, views_tracking

app_name = "automation"

urlpatterns: list[URLPattern] = [
    # Public links a message carries.
    path("e/o/<int:delivery>/<str:signature>", views_tracking.open_pixel, name="open"),
    path("e/c/<int:delivery>/<int:link>/<str:signature>", views_tracking.click, name="click"),
    # Owned by the consent pages; here so the links a message carries can be made.
    path(
        "e/u/<int:delivery>/<str:signature>",
        views_consent_links.unsubscribe,
        name="unsubscribe",
    ),
    path(
        "e/p/<int:contact>/<str:signature>",
        views_consent_links.preferences,
        name="preferences",
    ),
    path("e/confirm/<str:token>", views_consent_links.confirm, name="confirm"),
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
]
