from django.urls import path

from embudo.scoring import views

app_name = "scoring"

# Model pages live under models/ so /scoring/predictive/ stays the predictive app's.
urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("models/new/", views.model_create, name="model_create"),
    path("models/<slug:key>/", views.model_page, name="model"),
    path("models/<slug:key>/settings/", views.model_update, name="model_update"),
    path("models/<slug:key>/rescore/", views.model_rescore, name="model_rescore"),
    path("models/<slug:key>/rules/", views.rule_create, name="rule_create"),
    path("models/<slug:key>/rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
]
