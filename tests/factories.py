"""Factories for Homeroom's rows, and helpers that put people in a school in a role.

The factories keep every row's school equal to its parents' school, as the services do. The
helpers (`pupil_of`, `teacher_of`, `admin_of`, `guardian_of`) make a user who holds the
membership and the enrollment a role needs, which is how the pages and the websocket see people.
`build_campus` lays two schools side by side for the tests of who may see what.
"""

# factory_boy's declarations (Sequence, SubFactory, ...) carry no annotations; calling them in a
# class body is the library's whole interface.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone
from factory.declarations import (
    LazyAttribute,
    LazyFunction,
    SelfAttribute,
    Sequence,
    SubFactory,
)
from factory.django import DjangoModelFactory, Password

from accounts.models import Guardianship, Membership, Role, User
from classrooms.models import (
    ChatMessage,
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonState,
    PresenceInterval,
    School,
    SchoolClass,
    Term,
)

PASSWORD = "correct horse battery"


class SchoolFactory(DjangoModelFactory[School]):
    class Meta:
        model = School

    name = Sequence(lambda n: f"School {n}")
    slug = Sequence(lambda n: f"school-{n}")
    time_zone = "Europe/Paris"


class TermFactory(DjangoModelFactory[Term]):
    class Meta:
        model = Term

    school = SubFactory(SchoolFactory)
    name = Sequence(lambda n: f"Year {n}")
    starts_on = date(2020, 8, 25)
    ends_on = date(2040, 7, 10)


class CourseFactory(DjangoModelFactory[Course]):
    class Meta:
        model = Course

    school = SubFactory(SchoolFactory)
    title = Sequence(lambda n: f"Subject {n}")
    code = Sequence(lambda n: f"SUBJ{n}")


class SchoolClassFactory(DjangoModelFactory[SchoolClass]):
    class Meta:
        model = SchoolClass

    school = SubFactory(SchoolFactory)
    term = SubFactory(TermFactory, school=SelfAttribute("..school"))
    course = SubFactory(CourseFactory, school=SelfAttribute("..school"))
    name = Sequence(lambda n: f"Class {n}")


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User

    email = Sequence(lambda n: f"person{n}@school.test")
    given_name = Sequence(lambda n: f"Given{n}")
    family_name = Sequence(lambda n: f"Family{n}")
    password = Password(PASSWORD)


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = SubFactory(UserFactory)
    school = SubFactory(SchoolFactory)
    role = Role.PUPIL


class EnrollmentFactory(DjangoModelFactory[Enrollment]):
    class Meta:
        model = Enrollment

    school_class = SubFactory(SchoolClassFactory)
    school = SelfAttribute("school_class.school")
    user = SubFactory(UserFactory)
    role = EnrollmentRole.PUPIL


class LessonFactory(DjangoModelFactory[Lesson]):
    class Meta:
        model = Lesson

    school_class = SubFactory(SchoolClassFactory)
    school = SelfAttribute("school_class.school")
    title = Sequence(lambda n: f"Lesson {n}")
    starts_at = LazyFunction(lambda: timezone.now() + timedelta(days=1))
    ends_at = LazyAttribute(lambda lesson: lesson.starts_at + timedelta(minutes=55))
    state = LessonState.SCHEDULED


class PresenceIntervalFactory(DjangoModelFactory[PresenceInterval]):
    """A closed stretch of connection from the lesson's start, ten minutes long."""

    class Meta:
        model = PresenceInterval

    lesson = SubFactory(LessonFactory)
    user = SubFactory(UserFactory)
    joined_at = SelfAttribute("lesson.starts_at")
    left_at = LazyAttribute(lambda interval: interval.joined_at + timedelta(minutes=10))
    last_seen_at = LazyAttribute(lambda interval: interval.left_at or interval.joined_at)


class ChatMessageFactory(DjangoModelFactory[ChatMessage]):
    class Meta:
        model = ChatMessage

    lesson = SubFactory(LessonFactory)
    author = SubFactory(UserFactory)
    body = Sequence(lambda n: f"Message {n}")


class GuardianshipFactory(DjangoModelFactory[Guardianship]):
    class Meta:
        model = Guardianship

    school = SubFactory(SchoolFactory)
    guardian = SubFactory(UserFactory)
    pupil = SubFactory(UserFactory)


# --- People in roles ------------------------------------------------------------------------------


def member(school: School, *roles: str, **user_fields: Any) -> User:
    """A user who holds `roles` in `school` (no enrollment)."""
    user: User = UserFactory.create(**user_fields)
    for role in roles:
        MembershipFactory.create(user=user, school=school, role=role)
    return user


def _on_rosters(user: User, classes: tuple[SchoolClass, ...], role: str) -> None:
    for school_class in classes:
        EnrollmentFactory.create(user=user, school_class=school_class, role=role)


def pupil_of(*classes: SchoolClass, **user_fields: Any) -> User:
    """A pupil of the classes' school, on each class's roster."""
    user = member(classes[0].school, Role.PUPIL, **user_fields)
    _on_rosters(user, classes, EnrollmentRole.PUPIL)
    return user


def teacher_of(*classes: SchoolClass, **user_fields: Any) -> User:
    """A teacher of the classes' school, on each class's roster as its teacher."""
    user = member(classes[0].school, Role.TEACHER, **user_fields)
    _on_rosters(user, classes, EnrollmentRole.TEACHER)
    return user


def admin_of(school: School, **user_fields: Any) -> User:
    """A school admin, on no roster."""
    return member(school, Role.ADMIN, **user_fields)


def guardian_of(*pupils: User, school: School, **user_fields: Any) -> User:
    """A guardian in `school` who follows `pupils`."""
    user = member(school, Role.GUARDIAN, **user_fields)
    for pupil in pupils:
        GuardianshipFactory.create(school=school, guardian=user, pupil=pupil)
    return user


def lesson_now(school_class: SchoolClass, *, now: datetime | None = None, **fields: Any) -> Lesson:
    """A lesson of `school_class` that started five minutes ago and runs for another 50."""
    now = now or timezone.now()
    fields.setdefault("starts_at", now - timedelta(minutes=5))
    fields.setdefault("ends_at", now + timedelta(minutes=50))
    lesson: Lesson = LessonFactory.create(school_class=school_class, **fields)
    return lesson


# --- Two schools side by side ---------------------------------------------------------------------


@dataclass
class Campus:
    """School A (classes X and Y) and school B (class Z), with someone in every position."""

    school_a: School
    school_b: School
    class_x: SchoolClass
    class_y: SchoolClass
    class_z: SchoolClass
    admin_a: User
    teacher_x: User
    pupil_x: User
    teacher_y: User
    pupil_y: User
    guardian_a: User
    admin_b: User
    teacher_z: User
    pupil_z: User
    inactive_pupil_x: User
    # On class X's roster, but no longer a member of school A.
    leaver_x: User
    # A user with no membership anywhere.
    outsider: User
    lesson_x: Lesson
    lesson_y: Lesson
    lesson_z: Lesson

    def person(self, name: str) -> User:
        user: User = getattr(self, name)
        return user


def build_campus(*, now: datetime | None = None) -> Campus:
    now = now or timezone.now()
    school_a = SchoolFactory.create(name="Ecole A", slug="ecole-a")
    school_b = SchoolFactory.create(name="Ecole B", slug="ecole-b")
    class_x = SchoolClassFactory.create(school=school_a, name="5X Maths")
    class_y = SchoolClassFactory.create(school=school_a, name="5Y French")
    class_z = SchoolClassFactory.create(school=school_b, name="5Z Maths")
    pupil_x = pupil_of(class_x, given_name="Pia", family_name="Xavier")
    leaver_x = UserFactory.create(given_name="Leo", family_name="Leaver")
    EnrollmentFactory.create(user=leaver_x, school_class=class_x, role=EnrollmentRole.PUPIL)
    return Campus(
        school_a=school_a,
        school_b=school_b,
        class_x=class_x,
        class_y=class_y,
        class_z=class_z,
        admin_a=admin_of(school_a, given_name="Ada", family_name="Admin"),
        teacher_x=teacher_of(class_x, given_name="Theo", family_name="Xenakis"),
        pupil_x=pupil_x,
        teacher_y=teacher_of(class_y, given_name="Tess", family_name="Young"),
        pupil_y=pupil_of(class_y, given_name="Paul", family_name="Yates"),
        guardian_a=guardian_of(pupil_x, school=school_a, given_name="Gina", family_name="Guard"),
        admin_b=admin_of(school_b, given_name="Bob", family_name="Admin"),
        teacher_z=teacher_of(class_z, given_name="Tom", family_name="Zola"),
        pupil_z=pupil_of(class_z, given_name="Zoe", family_name="Zed"),
        inactive_pupil_x=pupil_of(class_x, given_name="Ines", family_name="Gone", is_active=False),
        leaver_x=leaver_x,
        outsider=UserFactory.create(given_name="Otto", family_name="Outsider"),
        lesson_x=lesson_now(class_x, now=now, title="Fractions"),
        lesson_y=lesson_now(class_y, now=now, title="Verbs"),
        lesson_z=lesson_now(class_z, now=now, title="Angles"),
    )


def grow_school(campus: Campus, *, classes: int, pupils: int, lessons: int) -> None:
    """Add classes to school A, each with its own course, taught by teacher_x, with pupil_x and
    `pupils` more pupils on its roster and `lessons` lessons today (one of them live, one
    cancelled); give class X as many lessons more, all in bulk."""
    school: School = campus.school_a
    term = Term.objects.filter(school=school).first()
    assert term is not None
    start = SchoolClass.objects.count()
    courses = Course.objects.bulk_create(
        Course(school=school, title=f"Grown course {start + n}", code=f"GROWN{start + n}")
        for n in range(classes)
    )
    new_classes = SchoolClass.objects.bulk_create(
        SchoolClass(school=school, term=term, course=course, name=f"Grown {start + n}")
        for n, course in enumerate(courses)
    )
    first = User.objects.count()
    new_pupils = User.objects.bulk_create(
        User(email=f"grown{first + n}@school.test", given_name=f"Grown{first + n}")
        for n in range(classes * pupils)
    )
    Membership.objects.bulk_create(
        Membership(user=user, school=school, role=Role.PUPIL) for user in new_pupils
    )
    enrollments = []
    for index, school_class in enumerate(new_classes):
        roster = [
            (campus.teacher_x, EnrollmentRole.TEACHER),
            (campus.pupil_x, EnrollmentRole.PUPIL),
        ]
        roster += [
            (user, EnrollmentRole.PUPIL)
            for user in new_pupils[index * pupils : (index + 1) * pupils]
        ]
        enrollments += [
            Enrollment(school=school, school_class=school_class, user=user, role=role)
            for user, role in roster
        ]
    Enrollment.objects.bulk_create(enrollments)
    now = campus.lesson_x.starts_at + timedelta(minutes=5)
    Lesson.objects.bulk_create(
        Lesson(
            school=school,
            school_class=school_class,
            title=f"Grown lesson {n}",
            starts_at=now + timedelta(minutes=20 * (n - lessons // 2)),
            ends_at=now + timedelta(minutes=20 * (n - lessons // 2) + 15),
            state=(
                LessonState.LIVE
                if n == lessons // 2
                else LessonState.CANCELLED
                if n == 0
                else LessonState.SCHEDULED
            ),
        )
        for school_class in [*new_classes, campus.class_x]
        for n in range(lessons)
    )
