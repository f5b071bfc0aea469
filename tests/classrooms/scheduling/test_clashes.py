"""Clash checks: a class is in one lesson at a time, and so is each of its teachers, whichever of
their classes the other lesson belongs to. Cancelled lessons and touching intervals do not clash.
The refusal names the other lesson in the school's words and zone."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from accounts.models import User
from classrooms.models import EnrollmentRole, Lesson, LessonSeries, SchoolClass
from classrooms.scheduling import services
from classrooms.scheduling.exceptions import ScheduleClash
from tests.classrooms.scheduling.conftest import paris
from tests.factories import Campus, EnrollmentFactory, LessonFactory, SchoolClassFactory, teacher_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def fractions(campus) -> Lesson:
    """5X Maths, "Fractions", Tuesday 18 March 2025, 10:00-10:55 in Paris."""
    return services.lesson_schedule(
        actor=campus.teacher_x,
        school_class=campus.class_x,
        title="Fractions",
        starts_at=paris(2025, 3, 18, 10, 0),
        ends_at=paris(2025, 3, 18, 10, 55),
    )


def schedule(
    campus: Campus,
    school_class: SchoolClass,
    start: datetime,
    end: datetime,
    actor: User | None = None,
    title: str = "Other",
) -> Lesson:
    return services.lesson_schedule(
        actor=actor or campus.admin_a,
        school_class=school_class,
        title=title,
        starts_at=start,
        ends_at=end,
    )


def test_a_class_cannot_have_two_lessons_at_once(campus, fractions):
    with pytest.raises(ScheduleClash) as clash:
        schedule(campus, campus.class_x, paris(2025, 3, 18, 10, 30), paris(2025, 3, 18, 11, 30))
    assert clash.value.messages == [
        '5X Maths already has "Fractions" on Tuesday 18 March, 10:00–10:55.'  # noqa: RUF001
    ]
    assert clash.value.lesson_id == fractions.pk
    assert Lesson.objects.filter(school_class=campus.class_x).count() == 2  # lesson_x, fractions


def test_a_teacher_cannot_teach_two_classes_at_once(campus, fractions):
    EnrollmentFactory.create(
        user=campus.teacher_x, school_class=campus.class_y, role=EnrollmentRole.TEACHER
    )
    with pytest.raises(ScheduleClash) as clash:
        schedule(campus, campus.class_y, paris(2025, 3, 18, 9, 30), paris(2025, 3, 18, 10, 30))
    assert clash.value.messages == [
        'Theo Xenakis already teaches 5X Maths "Fractions" on Tuesday 18 March, 10:00–10:55.'  # noqa: RUF001
    ]


def test_classes_without_a_common_teacher_do_not_clash(campus, fractions):
    assert schedule(
        campus, campus.class_y, paris(2025, 3, 18, 10, 0), paris(2025, 3, 18, 10, 55)
    ).pk


def test_a_teacher_in_another_school_is_not_held_by_it(campus, fractions):
    other_school_class = SchoolClassFactory.create(school=campus.school_b)
    EnrollmentFactory.create(
        user=campus.teacher_x, school_class=other_school_class, role=EnrollmentRole.TEACHER
    )
    LessonFactory.create(
        school_class=other_school_class,
        starts_at=paris(2025, 3, 19, 10, 0),
        ends_at=paris(2025, 3, 19, 11, 0),
    )
    assert schedule(campus, campus.class_x, paris(2025, 3, 19, 10, 0), paris(2025, 3, 19, 11, 0)).pk


@pytest.mark.parametrize(
    ("start", "end"),
    [((9, 0), (10, 0)), ((10, 55), (11, 55))],
    ids=["ends-as-it-starts", "starts-as-it-ends"],
)
def test_touching_lessons_do_not_clash(campus, fractions, start, end):
    assert schedule(campus, campus.class_x, paris(2025, 3, 18, *start), paris(2025, 3, 18, *end))


def test_a_cancelled_lesson_clashes_with_nothing(campus, fractions):
    services.lesson_cancel(actor=campus.teacher_x, lesson=fractions)
    assert schedule(campus, campus.class_x, paris(2025, 3, 18, 10, 0), paris(2025, 3, 18, 10, 55))


def test_moving_a_lesson_over_its_own_old_slot_is_no_clash(campus, fractions):
    moved = services.lesson_update(
        actor=campus.teacher_x, lesson=fractions, starts_at=paris(2025, 3, 18, 10, 15)
    )
    assert moved.starts_at == paris(2025, 3, 18, 10, 15)


def test_moving_a_lesson_onto_another_is_refused_and_nothing_changes(campus, fractions):
    other = schedule(campus, campus.class_x, paris(2025, 3, 19, 10, 0), paris(2025, 3, 19, 11, 0))
    with pytest.raises(ScheduleClash, match="Fractions"):
        services.lesson_update(
            actor=campus.teacher_x, lesson=other, starts_at=paris(2025, 3, 18, 10, 30)
        )
    other.refresh_from_db()
    assert (other.starts_at, other.sequence) == (paris(2025, 3, 19, 10, 0), 0)


def test_a_series_names_its_first_clash_and_writes_nothing(campus, fractions):
    teacher_of(campus.class_x)  # a second teacher changes nothing
    schedule(
        campus, campus.class_x, paris(2025, 3, 25, 9, 30), paris(2025, 3, 25, 9, 45), title="Quiz"
    )
    with pytest.raises(ScheduleClash) as clash:
        services.series_create(
            actor=campus.teacher_x,
            school_class=campus.class_x,
            title="Maths",
            weekdays=["TU"],
            start_time=time(9, 0),
            duration_minutes=60,
            starts_on=date(2025, 3, 13),
            ends_on=date(2025, 4, 30),
        )
    # Tuesday 18 March, 09:00-10:00 only touches Fractions; 25 March overlaps the quiz.
    assert clash.value.messages == [
        '5X Maths already has "Quiz" on Tuesday 25 March, 09:30–09:45.'  # noqa: RUF001
    ]
    assert not LessonSeries.objects.exists()
    assert Lesson.objects.filter(school_class=campus.class_x).count() == 3


def test_a_series_change_does_not_clash_with_the_lessons_it_replaces(campus):
    series = services.series_create(
        actor=campus.teacher_x,
        school_class=campus.class_x,
        title="Maths",
        weekdays=["MO"],
        start_time=time(9, 0),
        duration_minutes=60,
        starts_on=date(2025, 3, 17),
        ends_on=date(2025, 4, 7),
    )
    new = services.series_update_from(
        actor=campus.teacher_x, series=series, from_date=date(2025, 3, 24), start_time=time(9, 30)
    )
    assert new.lessons.count() == 3


def test_a_series_change_that_clashes_is_refused_whole(campus):
    series = services.series_create(
        actor=campus.teacher_x,
        school_class=campus.class_x,
        title="Maths",
        weekdays=["MO"],
        start_time=time(9, 0),
        duration_minutes=60,
        starts_on=date(2025, 3, 17),
        ends_on=date(2025, 4, 7),
    )
    EnrollmentFactory.create(
        user=campus.teacher_x, school_class=campus.class_y, role=EnrollmentRole.TEACHER
    )
    schedule(
        campus, campus.class_y, paris(2025, 3, 31, 14, 0), paris(2025, 3, 31, 15, 0), title="Verbs"
    )
    with pytest.raises(ScheduleClash, match="Theo Xenakis already teaches 5Y French"):
        services.series_update_from(
            actor=campus.teacher_x,
            series=series,
            from_date=date(2025, 3, 24),
            start_time=time(14, 30),
        )
    series.refresh_from_db()
    assert series.ends_on == date(2025, 4, 7)
    assert LessonSeries.objects.count() == 1
    assert {
        lesson.starts_at.astimezone(paris(2025, 1, 1).tzinfo).hour
        for lesson in series.lessons.all()
    } == {9}
