from django.urls import path

from embudo.segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.segment_new, name="new"),
    path("<int:segment_id>/", views.segment_detail, name="detail"),
    path("<int:segment_id>/edit/", views.segment_edit, name="edit"),
    path("<int:segment_id>/delete/", views.segment_delete, name="delete"),
    path("<int:segment_id>/members/add/", views.members_add, name="members_add"),
    path("<int:segment_id>/members/remove/", views.members_remove, name="members_remove"),
    path("personas/new/", views.persona_new, name="persona_new"),
    path("personas/<int:persona_id>/edit/", views.persona_edit, name="persona_edit"),
    path("personas/<int:persona_id>/delete/", views.persona_delete, name="persona_delete"),
]
