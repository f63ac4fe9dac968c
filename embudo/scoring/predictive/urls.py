from django.urls import URLPattern

app_name = "predictive"

urlpatterns: list[URLPattern] = []
