"""Reads for the school admin's pages and the guardians' view, each scoped to one school.

Every `access_*` selector raises `NotFound` alike whether the row is missing or belongs to another
school, so a foreign id looks exactly like a missing one. The lists are paginated and cost a fixed
number of queries per page whatever the size of the school: a count, the page, and one prefetch
at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from accounts.models import Guardianship, Invitation, Membership, Role, User
from classrooms.exceptions import NotFound
from classrooms.models import (
    AuditEvent,
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    School,
    SchoolClass,
    Term,
)
from classrooms.selectors import Day, days_of_week
from classrooms.weeks import local_span

PAGE_SIZE = 50
# How many pupils or teachers the "add to the class" lists show before asking for a search.
CANDIDATE_LIMIT = 100
# The words of a search that count; more would only make longer queries.
SEARCH_WORDS = 5


def no_password() -> Q:
    """Accounts nobody can log into yet: created by an import or by an admin, never invited."""
    return Q(password="") | Q(password__startswith=UNUSABLE_PASSWORD_PREFIX)


def _search(queryset: QuerySet[User], q: str, prefix: str = "") -> QuerySet[User]:
    """Every word must appear in the given name, the family name or the email."""
    for word in q.split()[:SEARCH_WORDS]:
        queryset = queryset.filter(
            Q(**{f"{prefix}given_name__icontains": word})
            | Q(**{f"{prefix}family_name__icontains": word})
            | Q(**{f"{prefix}email__icontains": word})
        )
    return queryset


# --- People ---------------------------------------------------------------------------------------


class InvitationStatus:
    """Where a person stands with logging in, as the people list shows it."""

    LOGS_IN = "logs-in"
    INVITED = "invited"
    EXPIRED = "expired"
    NOT_INVITED = "none"

    LABELS: dict[str, StrOrPromise] = {  # noqa: RUF012 -- a constant lookup table
        LOGS_IN: _("Has a password"),
        INVITED: _("Invited"),
        EXPIRED: _("Invitation expired"),
        NOT_INVITED: _("Not invited"),
    }


@dataclass(frozen=True)
class PersonRow:
    """A person as their school sees them: their roles there and whether they may log in."""

    user: User
    roles: tuple[str, ...]
    deactivated: bool
    has_password: bool
    invited_until: datetime | None
    now: datetime

    @property
    def role_labels(self) -> list[StrOrPromise]:
        return [Role(role).label for role in self.roles]

    @property
    def invitation_status(self) -> str:
        if self.has_password:
            return InvitationStatus.LOGS_IN
        if self.invited_until is None:
            return InvitationStatus.NOT_INVITED
        if self.invited_until <= self.now:
            return InvitationStatus.EXPIRED
        return InvitationStatus.INVITED

    @property
    def invitation_label(self) -> StrOrPromise:
        return InvitationStatus.LABELS[self.invitation_status]

    @property
    def can_be_invited(self) -> bool:
        return not self.deactivated and not self.has_password


def people_queryset(*, school: School) -> QuerySet[User]:
    """Everyone who holds or held a role in the school, annotated for the people list.

    Annotations, not per-row queries: deactivation, whether a password is set, and the expiry of
    the newest invitation still standing; the person's roles in this school come in one prefetch.
    """
    in_school = Membership.objects.filter(school=school)
    standing = Invitation.objects.filter(
        school=school, user=OuterRef("pk"), revoked_at__isnull=True, accepted_at__isnull=True
    ).order_by("-created_at", "-id")
    return (
        User.objects.filter(id__in=in_school.values("user_id"))
        .annotate(
            is_deactivated=Case(
                When(is_active=False, then=Value(True)),
                When(
                    Exists(in_school.filter(user=OuterRef("pk"), deactivated_at__isnull=True)),
                    then=Value(False),
                ),
                default=Value(True),
                output_field=BooleanField(),
            ),
            has_password=Case(
                When(no_password(), then=Value(False)),
                default=Value(True),
                output_field=BooleanField(),
            ),
            invited_until=Subquery(standing.values("expires_at")[:1], output_field=DateTimeField()),
        )
        .prefetch_related(
            Prefetch("memberships", queryset=in_school.order_by("role"), to_attr="school_roles")
        )
        .order_by("family_name", "given_name", "email", "id")
    )


def _person_row(user: User, now: datetime) -> PersonRow:
    return PersonRow(
        user=user,
        roles=tuple(m.role for m in user.school_roles),  # type: ignore[attr-defined]
        deactivated=user.is_deactivated,  # type: ignore[attr-defined]
        has_password=user.has_password,  # type: ignore[attr-defined]
        invited_until=user.invited_until,  # type: ignore[attr-defined]
        now=now,
    )


@dataclass(frozen=True)
class PeoplePage:
    page: Page[User]
    rows: list[PersonRow]


def people_page(
    *,
    school: School,
    now: datetime,
    q: str = "",
    role: str = "",
    status: str = "",
    page: int | str = 1,
) -> PeoplePage:
    """One page of the school's people, searched and filtered (three queries)."""
    people = people_queryset(school=school)
    if q:
        people = _search(people, q)
    if role:
        people = people.filter(
            id__in=Membership.objects.filter(school=school, role=role).values("user_id")
        )
    if status == "active":
        people = people.filter(Q(is_deactivated=False))
    elif status == "deactivated":
        people = people.filter(Q(is_deactivated=True))
    current = Paginator(people, PAGE_SIZE).get_page(page)
    return PeoplePage(page=current, rows=[_person_row(user, now) for user in current])


def access_person_for_admin(*, school: School, user_id: int) -> PersonRow:
    """Someone who holds or held a role in the admin's school."""
    try:
        user = people_queryset(school=school).get(id=user_id)
    except User.DoesNotExist:
        raise NotFound from None
    return _person_row(user, timezone.now())


def is_managed_elsewhere(*, school: School, user: User) -> bool:
    """Does another school (or an operator) also rely on this account?

    Such an account's email and name are not this school's to change, and it is never sent an
    invitation that would let whoever reads the new email set its password.
    """
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user).exclude(school=school).exists()


@dataclass(frozen=True)
class PersonDetail:
    person: PersonRow
    managed_elsewhere: bool
    enrollments: list[Enrollment]
    guardians: list[User]
    wards: list[User]


def person_detail(*, school: School, person: PersonRow) -> PersonDetail:
    """What the person's page shows besides their row (four queries)."""
    user = person.user
    return PersonDetail(
        person=person,
        managed_elsewhere=is_managed_elsewhere(school=school, user=user),
        enrollments=list(
            Enrollment.objects.filter(school=school, user=user)
            .select_related("school_class", "school_class__course")
            .order_by("school_class__name")
        ),
        guardians=[
            g.guardian
            for g in Guardianship.objects.filter(school=school, pupil=user)
            .select_related("guardian")
            .order_by("guardian__family_name", "guardian__given_name")
        ],
        wards=[
            g.pupil
            for g in Guardianship.objects.filter(school=school, guardian=user)
            .select_related("pupil")
            .order_by("pupil__family_name", "pupil__given_name")
        ],
    )


def members_with_role(*, school: School, role: str) -> QuerySet[User]:
    """People who hold `role` in the school and are not deactivated there."""
    return User.objects.filter(
        is_active=True,
        id__in=Membership.objects.active().filter(school=school, role=role).values("user_id"),
    ).order_by("family_name", "given_name", "email", "id")


@dataclass(frozen=True)
class Candidates:
    people: list[User]
    more: bool


def candidates(
    *,
    queryset: QuerySet[User],
    q: str = "",
    limit: int = CANDIDATE_LIMIT,
) -> Candidates:
    """The first `limit` people of `queryset` matching the search, and whether there are more."""
    found = list(_search(queryset, q)[: limit + 1])
    return Candidates(people=found[:limit], more=len(found) > limit)


def pupils_to_link(*, school: School, guardian: User) -> QuerySet[User]:
    """The school's active pupils not yet linked to this guardian."""
    linked = Guardianship.objects.filter(school=school, guardian=guardian).values("pupil_id")
    return members_with_role(school=school, role=Role.PUPIL).exclude(id__in=linked)


@dataclass(frozen=True)
class SchoolDashboard:
    people: dict[str, int]
    deactivated: int
    without_password: int
    classes: int
    archived_classes: int
    terms: int
    courses: int


def school_dashboard(*, school: School) -> SchoolDashboard:
    """Counts for the admin's dashboard (five queries)."""
    people = dict(
        Membership.objects.active()
        .filter(school=school)
        .values_list("role")
        .annotate(n=Count("user", distinct=True))
        .values_list("role", "n")
    )
    everyone = people_queryset(school=school).prefetch_related(None).order_by()
    counts = everyone.aggregate(
        deactivated=Count("id", filter=Q(is_deactivated=True)),
        without_password=Count("id", filter=Q(is_deactivated=False, has_password=False)),
    )
    classes = SchoolClass.objects.filter(school=school).aggregate(
        active=Count("id", filter=Q(archived_at__isnull=True)),
        archived=Count("id", filter=Q(archived_at__isnull=False)),
    )
    return SchoolDashboard(
        people={role: people.get(role, 0) for role in Role.values},
        deactivated=counts["deactivated"],
        without_password=counts["without_password"],
        classes=classes["active"],
        archived_classes=classes["archived"],
        terms=Term.objects.filter(school=school).count(),
        courses=Course.objects.filter(school=school).count(),
    )


# --- Classes --------------------------------------------------------------------------------------


def classes_page(
    *, school: School, q: str = "", status: str = "", page: int | str = 1
) -> Page[SchoolClass]:
    """One page of the school's classes with teachers and pupil counts (three queries)."""
    classes = SchoolClass.objects.filter(school=school)
    if status == "archived":
        classes = classes.filter(archived_at__isnull=False)
    elif status != "all":
        classes = classes.active()
    for word in q.split()[:SEARCH_WORDS]:
        classes = classes.filter(Q(name__icontains=word) | Q(course__title__icontains=word))
    classes = (
        classes.select_related("term", "course")
        .with_pupil_count()
        .prefetch_related(
            Prefetch(
                "enrollments",
                queryset=Enrollment.objects.teachers()
                .select_related("user")
                .order_by("user__family_name", "user__given_name"),
                to_attr="teacher_enrollments",
            )
        )
        .order_by("name", "id")
    )
    return Paginator(classes, PAGE_SIZE).get_page(page)


def access_class_for_admin(*, school: School, class_id: int) -> SchoolClass:
    try:
        return SchoolClass.objects.select_related("term", "course").get(school=school, id=class_id)
    except SchoolClass.DoesNotExist:
        raise NotFound from None


def class_roster_for_admin(*, school_class: SchoolClass) -> list[Enrollment]:
    """Teachers then pupils by name, each marked whether their role in the school still stands
    (one query)."""
    return list(
        Enrollment.objects.filter(school_class=school_class)
        .select_related("user")
        .annotate(
            member=Exists(
                Membership.objects.active().filter(
                    school_id=school_class.school_id,
                    user=OuterRef("user_id"),
                    role=OuterRef("role"),
                )
            )
        )
        .order_by("-role", "user__family_name", "user__given_name", "user__email")
    )


def enrollable(*, school_class: SchoolClass, role: str) -> QuerySet[User]:
    """Active members of the class's school with the matching role, not yet on its roster."""
    on_roster = Enrollment.objects.filter(school_class=school_class).values("user_id")
    return members_with_role(school=school_class.school, role=role).exclude(id__in=on_roster)


def enrolled(*, school_class: SchoolClass) -> QuerySet[User]:
    """Everyone on the class's roster, teachers and pupils."""
    return User.objects.filter(
        id__in=Enrollment.objects.filter(school_class=school_class).values("user_id")
    )


# --- Terms and courses ----------------------------------------------------------------------------


def school_terms(*, school: School) -> QuerySet[Term]:
    return Term.objects.filter(school=school).order_by("-starts_on", "name")


def school_courses(*, school: School) -> QuerySet[Course]:
    return Course.objects.filter(school=school).order_by("title", "code")


def access_term_for_admin(*, school: School, term_id: int) -> Term:
    try:
        return Term.objects.get(school=school, id=term_id)
    except Term.DoesNotExist:
        raise NotFound from None


def access_course_for_admin(*, school: School, course_id: int) -> Course:
    try:
        return Course.objects.get(school=school, id=course_id)
    except Course.DoesNotExist:
        raise NotFound from None


# --- Audit log ------------------------------------------------------------------------------------


def audit_actors(*, school: School) -> QuerySet[User]:
    """Everyone who appears as the actor of an event of this school."""
    return User.objects.filter(
        id__in=AuditEvent.objects.filter(school=school, actor__isnull=False).values("actor_id")
    ).order_by("family_name", "given_name", "email")


def audit_events_page(
    *,
    school: School,
    action: str = "",
    actor_id: int | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int | str = 1,
) -> Page[AuditEvent]:
    """One page of the school's audit log, newest first; days are the school's (two queries)."""
    events = AuditEvent.objects.filter(school=school)
    if action:
        events = events.filter(action=action)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    tz = school.tzinfo
    if since is not None:
        events = events.filter(at__gte=datetime.combine(since, time.min, tzinfo=tz))
    if until is not None:
        next_day = until + timedelta(days=1)
        events = events.filter(at__lt=datetime.combine(next_day, time.min, tzinfo=tz))
    events = events.select_related("actor").order_by("-at", "-id")
    return Paginator(events, PAGE_SIZE).get_page(page)


# --- Guardians ------------------------------------------------------------------------------------


def guardianships_for_guardian(*, user: User) -> list[Guardianship]:
    """The pupils a guardian follows, in the schools where both still hold their roles (one
    query)."""
    if not user.is_authenticated or not user.is_active:
        return []
    return list(
        _standing_guardianships(user)
        .select_related("pupil", "school")
        .order_by("school__name", "pupil__given_name", "pupil__family_name")
    )


def _standing_guardianships(user: User) -> QuerySet[Guardianship]:
    active = Membership.objects.active()
    return Guardianship.objects.filter(
        guardian=user,
        school_id__in=active.filter(user=user, role=Role.GUARDIAN).values("school_id"),
    ).filter(
        Exists(
            active.filter(user=OuterRef("pupil_id"), school=OuterRef("school_id"), role=Role.PUPIL)
        )
    )


def access_ward_for_guardian(*, user: User, school_id: int, pupil_id: int) -> Guardianship:
    """A pupil the user follows as an active guardian of the pupil's school."""
    if not user.is_authenticated or not user.is_active:
        raise NotFound
    try:
        return (
            _standing_guardianships(user)
            .select_related("pupil", "school")
            .get(school_id=school_id, pupil_id=pupil_id)
        )
    except Guardianship.DoesNotExist:
        raise NotFound from None


def ward_week(*, school: School, pupil: User, monday: date, today: date) -> list[Day]:
    """A pupil's lessons in the week starting `monday`, by day, read-only (one query).

    Weekend days appear only when they hold a lesson, as on the pupil's own "my week".
    """
    start, end = local_span(school=school, first=monday, days=7)
    lessons = (
        Lesson.objects.filter(
            school=school,
            school_class__enrollments__user=pupil,
            school_class__enrollments__role=EnrollmentRole.PUPIL,
        )
        .overlapping(start, end)
        .for_display()
        .order_by("starts_at")
    )
    return days_of_week(lessons, school=school, monday=monday, today=today)
