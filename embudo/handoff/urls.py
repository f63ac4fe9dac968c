from django.urls import URLPattern

app_name = "handoff"

urlpatterns: list[URLPattern] = []
