from django.urls import path

from embudo.deals import views

app_name = "deals"

urlpatterns = [
    path("", views.board, name="board"),
    path("list/", views.deal_list, name="list"),
    path("new/", views.deal_new, name="new"),
    path("<int:deal_id>/", views.deal_detail, name="detail"),
    path("<int:deal_id>/move/", views.deal_move, name="move"),
    path("forecast/", views.forecast_page, name="forecast"),
    path("plan/", views.plan_page, name="plan"),
    path("plan/goal/", views.goal_set, name="goal"),
    path("plotly.min.js", views.plotly_js, name="plotly"),
]
