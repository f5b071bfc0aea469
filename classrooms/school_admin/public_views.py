"""Pages outside the admin's school pages: the invitation link, and the guardians' view.

The invitation link needs no login: the token is the credential. An unknown token and a foreign
one read the same, and no page about a link that does not work names whose link it was. A
guardian sees only the pupils linked to them, read-only, and 404 for any other pupil.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from classrooms.school_admin import invitations, selectors
from classrooms.school_admin.views import request_user
from classrooms.weeks import monday_of, week_asked

# A week further than this from today is not a timetable anyone needs, and bounds the dates parsed.
MAX_WEEKS_AWAY = 104


def _link_not_working(request: HttpRequest, state: invitations.LinkState) -> HttpResponse:
    return render(
        request,
        "classrooms/school_admin/invitation_invalid.html",
        {"state": state.value},
        status=404 if state == invitations.LinkState.UNKNOWN else 410,
    )


@sensitive_post_parameters("new_password1", "new_password2")
@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    link = invitations.invitation_link(token=token, now=timezone.now())
    if link.invitation is None:
        return _link_not_working(request, link.state)
    invited = link.invitation.user
    form = SetPasswordForm(invited, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitations.invitation_accept(
                token=token, password=form.cleaned_data["new_password1"]
            )
        except invitations.InvitationUnusableError as error:
            return _link_not_working(request, error.state)
        except ValidationError as error:
            form.add_error("new_password2", error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Your password is set. Welcome to Homeroom."))
            return redirect("classrooms:home")
    return render(
        request,
        "classrooms/school_admin/invitation.html",
        {
            "form": form,
            "invited": invited,
            "invited_school": link.invitation.school,
            "expires": invitations.invitation_expiry(
                school=link.invitation.school, expires_at=link.invitation.expires_at
            ),
        },
    )


@require_GET
@login_required
def children(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    return render(
        request,
        "classrooms/school_admin/children.html",
        {"links": selectors.guardianships_for_guardian(user=user)},
    )


@require_GET
@login_required
def child_week(request: HttpRequest, school_id: int, pupil_id: int) -> HttpResponse:
    link = selectors.access_ward_for_guardian(
        user=request_user(request), school_id=school_id, pupil_id=pupil_id
    )
    school, pupil = link.school, link.pupil
    now = timezone.now()
    today = now.astimezone(school.tzinfo).date()
    monday = week_asked(request.GET.get("week"), today=today, max_days_away=MAX_WEEKS_AWAY * 7)
    ward: User = pupil
    return render(
        request,
        "classrooms/school_admin/child_week.html",
        {
            "school": school,
            "pupil": ward,
            "monday": monday,
            "sunday": monday + timedelta(days=6),
            "previous_week": monday - timedelta(days=7),
            "next_week": monday + timedelta(days=7),
            "is_this_week": monday == monday_of(today),
            "days": selectors.ward_week(school=school, pupil=ward, monday=monday, today=today),
            "now": now,
        },
    )
