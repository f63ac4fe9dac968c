from django.urls import path

from embudo.handoff import views

app_name = "handoff"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:handoff_id>/feedback/", views.feedback, name="feedback"),
    path("<int:handoff_id>/reassign/", views.reassign, name="reassign"),
    path("sla/", views.sla_page, name="sla"),
    path("notifications/", views.notifications, name="notifications"),
    path("settings/", views.settings_index, name="settings"),
    path("settings/<str:kind>/", views.settings_list, name="settings_list"),
    path("settings/<str:kind>/new/", views.settings_edit, name="settings_new"),
    path("settings/<str:kind>/<int:pk>/", views.settings_edit, name="settings_edit"),
    path("settings/<str:kind>/<int:pk>/delete/", views.settings_delete, name="settings_delete"),
]
