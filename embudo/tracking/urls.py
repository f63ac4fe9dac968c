from django.urls import path

from embudo.tracking import views

app_name = "tracking"

urlpatterns = [
    path("t.js", views.snippet, name="snippet"),
    path("t.gif", views.pixel, name="pixel"),
    path("t/collect", views.collect, name="collect"),
    path("f/<slug:slug>", views.form_endpoint, name="form"),
    path("sources/", views.sources, name="sources"),
    path("settings/capture/", views.capture_settings, name="settings"),
    path("settings/capture/keys/", views.site_key_create, name="site_key_create"),
    path("settings/capture/keys/<int:key_id>/", views.site_key_update, name="site_key_update"),
    path("settings/capture/forms/new/", views.form_edit, name="form_new"),
    path("settings/capture/forms/<int:form_id>/", views.form_edit, name="form_edit"),
    path("settings/capture/channels/", views.channel_rules, name="channel_rules"),
]
