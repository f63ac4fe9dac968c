from django.urls import path

from embudo.predictive import views

app_name = "predictive"

urlpatterns = [
    path("", views.report_page, name="report"),
    path("train/", views.train, name="train"),
    path("exclusions/", views.exclusions, name="exclusions"),
    path("versions/<int:version>/activate/", views.activate, name="activate"),
]
