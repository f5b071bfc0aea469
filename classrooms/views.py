"""Pages: each user's home, a class, a lesson.

Views parse the request, call selectors and render; they write nothing. Anything outside the
user's school or roster raises `NotFound` in the selector and answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Role, User
from classrooms import selectors
from classrooms.models import EnrollmentRole, Lesson, School, SchoolClass


@dataclass
class SchoolHome:
    """What one school shows on a user's home page, by the roles they hold there."""

    school: School
    roles: frozenset[str]
    week: list[selectors.Day] = field(default_factory=list)
    classes: list[SchoolClass] = field(default_factory=list)
    next_lessons: list[Lesson] = field(default_factory=list)
    overview: selectors.SchoolOverview | None = None
    wards: list[selectors.WardToday] = field(default_factory=list)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required lets only real users through"  # noqa: S101
    return user


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    now = timezone.now()
    roles = selectors.roles_by_school(user)
    homes = []
    for school in selectors.schools_for_user(user):
        held = roles.get(school.pk, frozenset())
        home = SchoolHome(school=school, roles=held)
        if Role.PUPIL in held:
            home.week = selectors.pupil_week(user=user, school=school, now=now)
        if Role.TEACHER in held:
            home.classes = selectors.teacher_classes(user=user, school=school)
            home.next_lessons = selectors.teacher_next_lessons(user=user, school=school, now=now)
        if Role.ADMIN in held:
            home.overview = selectors.school_overview(school=school, now=now)
        if Role.GUARDIAN in held:
            home.wards = selectors.guardian_wards_today(user=user, school=school, now=now)
        homes.append(home)
    return render(request, "classrooms/home.html", {"homes": homes, "now": now})


@require_GET
@login_required
def class_detail(request: HttpRequest, class_id: int) -> HttpResponse:
    school_class = selectors.access_class_for_user(user=_user(request), class_id=class_id)
    now = timezone.now()
    roster = list(selectors.class_roster(school_class=school_class))
    return render(
        request,
        "classrooms/class_detail.html",
        {
            "school_class": school_class,
            "school": school_class.school,
            "teachers": [e.user for e in roster if e.role == "teacher"],
            "pupils": [e.user for e in roster if e.role == "pupil"],
            "lessons": selectors.class_upcoming_lessons(school_class=school_class, now=now),
            "now": now,
        },
    )


@require_GET
@login_required
def lesson_detail(request: HttpRequest, lesson_key: str) -> HttpResponse:
    user = _user(request)
    lesson = selectors.access_lesson_for_user(user=user, lesson_key=lesson_key)
    now = timezone.now()
    roster_role = selectors.roster_role(user=user, school_class=lesson.school_class)
    is_teacher = roster_role == EnrollmentRole.TEACHER
    return render(
        request,
        "classrooms/lesson_detail.html",
        {
            "lesson": lesson,
            "school": lesson.school,
            "now": now,
            "roster_role": roster_role,
            "can_join": roster_role is not None and lesson.is_joinable(now),
            # Teachers first see a preview of their camera and microphone; pupils join at once.
            "is_teacher": is_teacher,
            "attendance_url": (
                reverse("classrooms:lesson_attendance", kwargs={"lesson_key": lesson.key})
                if is_teacher
                else None
            ),
        },
    )
