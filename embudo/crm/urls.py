from django.urls import path

from embudo.crm import views

app_name = "crm"

urlpatterns = [
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/stage/", views.contact_change_stage, name="contact_stage"),
    path(
        "contacts/<int:contact_id>/activities/",
        views.contact_log_activity,
        name="contact_activity",
    ),
    path("companies/", views.company_list, name="companies"),
    path("companies/<int:company_id>/", views.company_detail, name="company"),
]
