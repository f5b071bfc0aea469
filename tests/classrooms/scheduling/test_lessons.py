"""One lesson at a time: scheduling a one-off lesson, moving or renaming it, cancelling it.

Times are entered as aware datetimes and stored in UTC; a lesson starts in the future, lasts 5 to
600 minutes and falls in its class's term; only a lesson still to come changes; every change
bumps its sequence, and a move or a cancellation is announced after commit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from classrooms.exceptions import NotFound
from classrooms.models import Lesson, LessonState
from classrooms.scheduling import services
from tests.classrooms.scheduling.conftest import paris
from tests.factories import (
    Campus,
    LessonFactory,
    SchoolClassFactory,
    TermFactory,
    admin_of,
    guardian_of,
    teacher_of,
)

pytestmark = pytest.mark.django_db


def schedule(campus: Campus, actor: User | None = None, **fields: Any) -> Lesson:
    fields.setdefault("school_class", campus.class_x)
    fields.setdefault("title", "Fractions")
    fields.setdefault("starts_at", paris(2025, 3, 18, 10, 0))
    fields.setdefault("ends_at", paris(2025, 3, 18, 10, 55))
    return services.lesson_schedule(actor=actor or campus.teacher_x, **fields)


class TestSchedule:
    def test_a_teacher_schedules_a_lesson_of_their_class_stored_in_utc(self, campus):
        lesson = schedule(campus)
        lesson.refresh_from_db()
        assert lesson.starts_at == datetime(2025, 3, 18, 9, 0, tzinfo=UTC)
        assert lesson.ends_at == datetime(2025, 3, 18, 9, 55, tzinfo=UTC)
        assert (lesson.school_id, lesson.title, lesson.state) == (
            campus.school_a.pk,
            "Fractions",
            LessonState.SCHEDULED,
        )
        assert lesson.series_id is None
        assert lesson.sequence == 0

    def test_a_school_admin_schedules_any_class_of_their_school(self, campus):
        lesson = schedule(campus, actor=campus.admin_a, school_class=campus.class_y)
        assert lesson.school_class == campus.class_y

    @pytest.mark.parametrize(
        "person",
        ["pupil_x", "teacher_y", "admin_b", "teacher_z", "guardian_a", "leaver_x", "outsider"],
    )
    def test_nobody_else_schedules_the_class(self, campus, person):
        with pytest.raises(NotFound):
            schedule(campus, actor=campus.person(person))
        assert (
            not Lesson.objects.filter(title="Fractions", school_class=campus.class_x)
            .exclude(pk=campus.lesson_x.pk)
            .exists()
        )

    def test_a_teacher_who_left_the_school_no_longer_schedules(self, campus):
        campus.teacher_x.memberships.update(deactivated_at=datetime(2025, 3, 1, tzinfo=UTC))
        with pytest.raises(NotFound):
            schedule(campus)

    def test_a_guardian_of_a_pupil_of_the_class_cannot_schedule(self, campus):
        guardian = guardian_of(campus.pupil_x, school=campus.school_a)
        with pytest.raises(NotFound):
            schedule(campus, actor=guardian)

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"ends_at": paris(2025, 3, 18, 9, 0)}, "ends_at"),
            ({"ends_at": paris(2025, 3, 18, 10, 0)}, "ends_at"),
            ({"ends_at": paris(2025, 3, 18, 10, 4)}, "ends_at"),
            ({"ends_at": paris(2025, 3, 18, 20, 1)}, "ends_at"),
            ({"title": "   "}, "title"),
            ({"title": "x" * 201}, "title"),
            (
                {"starts_at": paris(2025, 3, 11, 10, 0), "ends_at": paris(2025, 3, 11, 11, 0)},
                "starts_at",
            ),
        ],
    )
    def test_bad_input_is_refused_on_its_field(self, campus, fields, field):
        with pytest.raises(ValidationError) as refused:
            schedule(campus, **fields)
        assert field in refused.value.message_dict

    def test_a_lesson_earlier_today_is_in_the_past(self, campus):
        # 10:30 in Paris now: 10:00 has gone.
        with pytest.raises(ValidationError, match="past"):
            schedule(campus, starts_at=paris(2025, 3, 12, 10, 0), ends_at=paris(2025, 3, 12, 11, 0))

    def test_a_lesson_outside_the_class_term_is_refused(self, campus):
        term = TermFactory.create(
            school=campus.school_a, starts_on=date(2025, 1, 6), ends_on=date(2025, 3, 28)
        )
        school_class = SchoolClassFactory.create(school=campus.school_a, term=term)
        teacher = teacher_of(school_class)
        with pytest.raises(ValidationError, match="The term"):
            schedule(
                campus,
                actor=teacher,
                school_class=school_class,
                starts_at=paris(2025, 3, 31, 10, 0),
                ends_at=paris(2025, 3, 31, 11, 0),
            )

    def test_naive_times_are_refused(self, campus):
        with pytest.raises(ValidationError, match="time zone"):
            schedule(
                campus,
                starts_at=datetime(2025, 3, 18, 10, 0),  # noqa: DTZ001
                ends_at=datetime(2025, 3, 18, 11, 0),  # noqa: DTZ001
            )

    def test_an_archived_class_is_not_scheduled(self, campus):
        campus.class_x.archived_at = datetime(2025, 3, 1, tzinfo=UTC)
        campus.class_x.save()
        with pytest.raises(ValidationError, match="archived"):
            schedule(campus)


class TestUpdate:
    def test_moving_a_lesson_keeps_its_length_bumps_its_sequence_and_announces_it(
        self, campus, notices, django_capture_on_commit_callbacks
    ):
        lesson = schedule(campus)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            moved = services.lesson_update(
                actor=campus.teacher_x, lesson=lesson, starts_at=paris(2025, 3, 19, 14, 0)
            )
        assert len(callbacks) == 1
        assert notices == [(lesson.pk, "moved")]
        moved.refresh_from_db()
        assert (moved.starts_at, moved.ends_at) == (
            paris(2025, 3, 19, 14, 0),
            paris(2025, 3, 19, 14, 55),
        )
        assert moved.key == lesson.key
        assert moved.sequence == 1
        assert moved.is_exception is False  # a one-off lesson is no series' exception

    def test_renaming_is_not_announced_but_bumps_the_sequence(
        self, campus, notices, django_capture_on_commit_callbacks
    ):
        lesson = schedule(campus)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            renamed = services.lesson_update(
                actor=campus.teacher_x, lesson=lesson, title="Decimals"
            )
        assert callbacks == []
        assert notices == []
        assert (renamed.title, renamed.sequence) == ("Decimals", 1)

    def test_nothing_changed_writes_nothing(self, campus, django_capture_on_commit_callbacks):
        lesson = schedule(campus)
        with django_capture_on_commit_callbacks() as callbacks:
            same = services.lesson_update(
                actor=campus.teacher_x, lesson=lesson, title="Fractions", starts_at=lesson.starts_at
            )
        assert callbacks == []
        assert same.sequence == 0

    def test_a_new_end_alone_changes_the_length(self, campus):
        lesson = schedule(campus)
        longer = services.lesson_update(
            actor=campus.admin_a, lesson=lesson, ends_at=paris(2025, 3, 18, 11, 30)
        )
        assert longer.ends_at == paris(2025, 3, 18, 11, 30)
        assert longer.starts_at == paris(2025, 3, 18, 10, 0)

    @pytest.mark.parametrize("person", ["pupil_x", "teacher_y", "admin_b", "guardian_a"])
    def test_only_those_who_schedule_the_class_change_its_lessons(self, campus, person):
        lesson = schedule(campus)
        with pytest.raises(NotFound):
            services.lesson_update(actor=campus.person(person), lesson=lesson, title="Hacked")
        lesson.refresh_from_db()
        assert lesson.title == "Fractions"

    def test_a_lesson_under_way_or_over_is_not_changed(self, campus):
        with pytest.raises(ValidationError, match="started"):
            services.lesson_update(actor=campus.teacher_x, lesson=campus.lesson_x, title="Later")
        over = LessonFactory.create(
            school_class=campus.class_x,
            starts_at=paris(2025, 3, 11, 10, 0),
            ends_at=paris(2025, 3, 11, 11, 0),
        )
        with pytest.raises(ValidationError, match="over"):
            services.lesson_update(actor=campus.teacher_x, lesson=over, title="Later")

    def test_a_lesson_cannot_move_into_the_past(self, campus):
        lesson = schedule(campus)
        with pytest.raises(ValidationError, match="past"):
            services.lesson_update(
                actor=campus.teacher_x, lesson=lesson, starts_at=paris(2025, 3, 10, 10, 0)
            )

    def test_a_cancelled_lesson_is_not_moved(self, campus):
        lesson = schedule(campus)
        services.lesson_cancel(actor=campus.teacher_x, lesson=lesson)
        with pytest.raises(ValidationError, match="cancelled"):
            services.lesson_update(
                actor=campus.teacher_x, lesson=lesson, starts_at=paris(2025, 3, 20, 10, 0)
            )


class TestCancel:
    def test_a_cancelled_lesson_stays_marked_cancelled_and_is_announced(
        self, campus, notices, django_capture_on_commit_callbacks
    ):
        lesson = schedule(campus)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            cancelled = services.lesson_cancel(actor=campus.admin_a, lesson=lesson)
        assert len(callbacks) == 1
        assert notices == [(lesson.pk, "cancelled")]
        cancelled.refresh_from_db()
        assert (cancelled.state, cancelled.sequence) == (LessonState.CANCELLED, 1)

    def test_a_lesson_is_cancelled_once(self, campus, django_capture_on_commit_callbacks):
        lesson = schedule(campus)
        services.lesson_cancel(actor=campus.teacher_x, lesson=lesson)
        with (
            django_capture_on_commit_callbacks() as callbacks,
            pytest.raises(ValidationError, match="cancelled"),
        ):
            services.lesson_cancel(actor=campus.teacher_x, lesson=lesson)
        assert callbacks == []

    def test_a_past_lesson_is_not_cancelled(self, campus):
        over = LessonFactory.create(
            school_class=campus.class_x,
            starts_at=paris(2025, 3, 11, 10, 0),
            ends_at=paris(2025, 3, 11, 11, 0),
        )
        with pytest.raises(ValidationError, match="over"):
            services.lesson_cancel(actor=campus.teacher_x, lesson=over)
        over.refresh_from_db()
        assert over.state == LessonState.SCHEDULED

    @pytest.mark.parametrize("person", ["pupil_x", "teacher_y", "admin_b", "teacher_z"])
    def test_only_those_who_schedule_the_class_cancel_its_lessons(self, campus, person):
        lesson = schedule(campus)
        with pytest.raises(NotFound):
            services.lesson_cancel(actor=campus.person(person), lesson=lesson)
        lesson.refresh_from_db()
        assert lesson.state == LessonState.SCHEDULED

    def test_an_admin_of_the_school_who_is_not_on_the_roster_cancels(self, campus):
        other_admin = admin_of(campus.school_a)
        lesson = schedule(campus)
        assert services.lesson_cancel(actor=other_admin, lesson=lesson).state == "cancelled"


def test_the_lesson_length_bounds_are_five_to_six_hundred_minutes(campus):
    start = paris(2025, 3, 18, 8, 0)
    assert schedule(campus, starts_at=start, ends_at=start + timedelta(minutes=5))
    later = paris(2025, 3, 19, 8, 0)
    assert schedule(campus, starts_at=later, ends_at=later + timedelta(minutes=600))
