"""The project's URL configuration plus one API route the matrix does not know."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def extra(request: HttpRequest, thing_id: int) -> HttpResponse:
    return HttpResponse()


urlpatterns = [*project_urlpatterns, path("api/v1/extra/<int:thing_id>/", extra)]
