"""The notifications page, the bell's panel, and marking notifications read (POST only)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from classrooms.notifications import selectors, services


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only real users through"  # noqa: S101
    return user


def _safe(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse("classrooms:notifications:list")


@require_GET
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = selectors.recent_notifications(user=_user(request))
    return render(request, "classrooms/notifications/list.html", {"notifications": notifications})


@require_GET
@login_required
def notification_panel(request: HttpRequest) -> HttpResponse:
    """The bell's dropdown, fetched when it opens, so pages do not pay for it."""
    notifications = selectors.recent_notifications(user=_user(request), limit=10)
    return render(request, "classrooms/notifications/_panel.html", {"notifications": notifications})


@require_POST
@login_required
def notification_open(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one of the user's notifications read and go where it points (404 if not theirs)."""
    notification = services.notification_mark_read(
        user=_user(request), notification_id=notification_id, now=timezone.now()
    )
    return HttpResponseRedirect(_safe(request, notification.url), status=303)


@require_POST
@login_required
def notifications_read_all(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_all_read(user=_user(request), now=timezone.now())
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"unread": 0})
    return HttpResponseRedirect(_safe(request, request.POST.get("next")), status=303)
