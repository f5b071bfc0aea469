"""Homeroom's URL map: pages, accounts, the REST API and its documentation, the operators' admin
and a health check."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and for `make demo`/tests waiting on the server to come up."""
    return HttpResponse("ok\n", content_type="text/plain")


class OfflineSwaggerView(SpectacularSwaggerView):
    """Swagger UI from our own static files (drf-spectacular-sidecar), and without the badge that
    would send the schema to validator.swagger.io: the page makes no third-party request."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # drf-spectacular's views carry no annotations.
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        response.data["settings"] = json.dumps({"deepLinking": True, "validatorUrl": None})
        return response


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("api/v1/auth/", include("accounts.api")),
    path("api/v1/", include("classrooms.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", OfflineSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("django-admin/", admin.site.urls),
    path("", include("classrooms.urls")),
]
