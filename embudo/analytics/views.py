"""Pages: the shared dashboard, and any registered report as a CSV download."""
from django.http import HttpRequest, HttpResponse


def dashboard_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("")


def report_csv(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse("")
