from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from embudo.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("deals/", include("embudo.deals.urls")),
    path("segments/", include("embudo.segments.urls")),
    path("scoring/", include("embudo.scoring.urls")),
    path("scoring/predictive/", include("embudo.predictive.urls")),
    path("leads/", include("embudo.handoff.urls")),
    path("analytics/", include("embudo.analytics.urls")),
    path("", include("embudo.automation.urls")),
    path("", include("embudo.tracking.urls")),
    path("", include("embudo.crm.urls")),
    path("", include("embudo.web.urls")),
]
