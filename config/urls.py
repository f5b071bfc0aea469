"""Homeroom's URL map: pages, accounts, the operators' admin and a health check."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and for `make demo`/tests waiting on the server to come up."""
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("django-admin/", admin.site.urls),
    path("", include("classrooms.urls")),
]
