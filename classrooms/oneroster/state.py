"""The school's current roster, loaded once per plan: one query per table, whatever its size.

A plan compares every row of a bundle with what the school has; doing that per row would cost a
query per row. Instead each table of the school is read once into dicts keyed by sourcedId (and by
the natural key a row created by hand can be matched on). People are also looked up by email
address, in chunks, because a person may already have an account from another school.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from django.db.models.functions import Lower

from accounts.models import Guardianship, Membership, User
from classrooms.models import Course, Enrollment, School, SchoolClass, Term

# Emails looked up per query: well inside every database's limit on query parameters.
EMAIL_CHUNK: Final = 2000


@dataclass(slots=True)
class TermRecord:
    pk: int
    name: str
    starts_on: date
    ends_on: date
    sourced_id: str


@dataclass(slots=True)
class CourseRecord:
    pk: int
    title: str
    code: str
    sourced_id: str


@dataclass(slots=True)
class ClassRecord:
    pk: int
    name: str
    term_id: int
    course_id: int
    sourced_id: str
    archived: bool


@dataclass(slots=True)
class UserRecord:
    pk: int
    email: str
    given_name: str
    family_name: str
    # Staff, or a member of another school: the import does not rename such an account.
    shared: bool


@dataclass(slots=True)
class MembershipRecord:
    pk: int
    user_id: int
    role: str
    sourced_id: str
    deactivated_at: datetime | None


@dataclass(slots=True)
class EnrollmentRecord:
    pk: int
    class_id: int
    user_id: int
    role: str
    sourced_id: str


@dataclass
class SchoolState:
    school: School
    org_sourced_id: str
    terms: dict[str, TermRecord] = field(default_factory=dict)
    terms_by_name: dict[str, TermRecord] = field(default_factory=dict)
    courses: dict[str, CourseRecord] = field(default_factory=dict)
    courses_by_code: dict[str, CourseRecord] = field(default_factory=dict)
    classes: dict[str, ClassRecord] = field(default_factory=dict)
    classes_by_key: dict[tuple[int, str], ClassRecord] = field(default_factory=dict)
    classes_by_pk: dict[int, ClassRecord] = field(default_factory=dict)
    users: dict[int, UserRecord] = field(default_factory=dict)
    users_by_email: dict[str, UserRecord] = field(default_factory=dict)
    memberships: dict[int, list[MembershipRecord]] = field(default_factory=dict)
    user_by_sourced_id: dict[str, int] = field(default_factory=dict)
    enrollments: dict[str, EnrollmentRecord] = field(default_factory=dict)
    enrollments_by_key: dict[tuple[int, int], EnrollmentRecord] = field(default_factory=dict)
    guardianships: dict[tuple[int, int], int] = field(default_factory=dict)

    def sourced_id_of_user(self, user_id: int) -> str:
        for membership in self.memberships.get(user_id, ()):
            if membership.sourced_id:
                return membership.sourced_id
        return ""


def load_school_state(school: School) -> SchoolState:
    state = SchoolState(school=school, org_sourced_id=school.org_sourced_id)
    for pk, name, starts_on, ends_on, sourced_id in Term.objects.filter(school=school).values_list(
        "pk", "name", "starts_on", "ends_on", "sourced_id"
    ):
        term = TermRecord(pk, name, starts_on, ends_on, sourced_id)
        state.terms_by_name[name] = term
        if sourced_id:
            state.terms[sourced_id] = term
    for pk, title, code, sourced_id in Course.objects.filter(school=school).values_list(
        "pk", "title", "code", "sourced_id"
    ):
        course = CourseRecord(pk, title, code, sourced_id)
        state.courses_by_code[code] = course
        if sourced_id:
            state.courses[sourced_id] = course
    for row in SchoolClass.objects.filter(school=school).values_list(
        "pk", "name", "term_id", "course_id", "sourced_id", "archived_at"
    ):
        school_class = ClassRecord(row[0], row[1], row[2], row[3], row[4], row[5] is not None)
        state.classes_by_key[(school_class.term_id, school_class.name)] = school_class
        state.classes_by_pk[school_class.pk] = school_class
        if school_class.sourced_id:
            state.classes[school_class.sourced_id] = school_class
    _load_people(state)
    for pk, class_id, user_id, role, sourced_id in Enrollment.objects.filter(
        school=school
    ).values_list("pk", "school_class_id", "user_id", "role", "sourced_id"):
        enrollment = EnrollmentRecord(pk, class_id, user_id, role, sourced_id)
        state.enrollments_by_key[(class_id, user_id)] = enrollment
        if sourced_id:
            state.enrollments[sourced_id] = enrollment
    for pk, guardian_id, pupil_id in Guardianship.objects.filter(school=school).values_list(
        "pk", "guardian_id", "pupil_id"
    ):
        state.guardianships[(guardian_id, pupil_id)] = pk
    return state


def _load_people(state: SchoolState) -> None:
    school = state.school
    memberships: dict[int, list[MembershipRecord]] = defaultdict(list)
    for pk, user_id, role, sourced_id, deactivated_at in Membership.objects.filter(
        school=school
    ).values_list("pk", "user_id", "role", "sourced_id", "deactivated_at"):
        memberships[user_id].append(MembershipRecord(pk, user_id, role, sourced_id, deactivated_at))
        if sourced_id:
            state.user_by_sourced_id.setdefault(sourced_id, user_id)
    state.memberships = dict(memberships)
    members = Membership.objects.filter(school=school).values("user_id")
    elsewhere = set(
        Membership.objects.filter(user_id__in=members)
        .exclude(school=school)
        .values_list("user_id", flat=True)
        .distinct()
    )
    for pk, email, given_name, family_name, is_staff in User.objects.filter(
        pk__in=members
    ).values_list("pk", "email", "given_name", "family_name", "is_staff"):
        user = UserRecord(pk, email, given_name, family_name, is_staff or pk in elsewhere)
        state.users[pk] = user
        state.users_by_email[email.lower()] = user


def load_users_by_email(state: SchoolState, emails: Iterable[str]) -> None:
    """Add the accounts, of any school, that hold one of these (lower-case) emails."""
    wanted = sorted({email for email in emails if email and email not in state.users_by_email})
    for start in range(0, len(wanted), EMAIL_CHUNK):
        chunk = wanted[start : start + EMAIL_CHUNK]
        found = list(
            User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .values_list("pk", "email", "given_name", "family_name", "is_staff")
        )
        ids = [row[0] for row in found]
        # Not a member here (or they would be loaded): shared if a member anywhere.
        elsewhere = set(
            Membership.objects.filter(user_id__in=ids).values_list("user_id", flat=True).distinct()
        )
        for pk, email, given_name, family_name, is_staff in found:
            user = UserRecord(pk, email, given_name, family_name, is_staff or pk in elsewhere)
            state.users[pk] = user
            state.users_by_email[email.lower()] = user
