"""The automation app's pages (under /email/) and the public links messages carry (under /e/)."""

from django.urls import URLPattern, path

from embudo.automation import send_views

app_name = "automation"

urlpatterns: list[URLPattern] = [
    path("email/sends/", send_views.send_list, name="sends"),
    path("email/sends/new/", send_views.send_new, name="send_new"),
    path("email/sends/<int:send_id>/", send_views.send_detail, name="send"),
    path("email/sends/<int:send_id>/pause/", send_views.send_pause, name="send_pause"),
    path("email/sends/<int:send_id>/resume/", send_views.send_resume, name="send_resume"),
    path("email/sends/<int:send_id>/cancel/", send_views.send_cancel, name="send_cancel"),
]
