"""The automation app's pages (under /email/) and the public links messages carry (under /e/)."""

from django.urls import URLPattern

app_name = "automation"

urlpatterns: list[URLPattern] = []
