from django.urls import path

from embudo.analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard_page, name="dashboard"),
    path("reports/<slug:name>.csv", views.report_csv, name="report_csv"),
]
