from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "embudo.web"
    label = "web"
    verbose_name = "Web"
