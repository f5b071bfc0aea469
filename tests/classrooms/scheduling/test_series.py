"""Weekly series: generation with python-dateutil in the school's zone, daylight saving, the end
of the term, exceptions, changing a series from a day on and ending it early."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from classrooms.exceptions import NotFound
from classrooms.models import Lesson, LessonSeries, LessonState
from classrooms.scheduling import services
from tests.classrooms.scheduling.conftest import PARIS, paris
from tests.factories import Campus, SchoolClassFactory, TermFactory, teacher_of

pytestmark = pytest.mark.django_db


def create(campus: Campus, actor: User | None = None, **fields: Any) -> LessonSeries:
    fields.setdefault("school_class", campus.class_x)
    fields.setdefault("title", "Maths")
    fields.setdefault("weekdays", ["MO", "TH"])
    fields.setdefault("start_time", time(9, 0))
    fields.setdefault("duration_minutes", 55)
    fields.setdefault("starts_on", date(2025, 3, 17))
    fields.setdefault("ends_on", date(2025, 3, 30))
    return services.series_create(actor=actor or campus.teacher_x, **fields)


def local_starts(series_or_lessons: Any) -> list[datetime]:
    lessons = (
        series_or_lessons.lessons.all()
        if isinstance(series_or_lessons, LessonSeries)
        else series_or_lessons
    )
    return [lesson.starts_at.astimezone(PARIS) for lesson in lessons.order_by("starts_at")]


def utc_starts(series: LessonSeries) -> list[datetime]:
    return list(series.lessons.order_by("starts_at").values_list("starts_at", flat=True))


class TestCreate:
    def test_a_series_makes_one_lesson_per_weekday_occurrence(self, campus):
        series = create(campus)
        assert series.weekdays == "MO,TH"
        assert local_starts(series) == [
            paris(2025, 3, 17, 9, 0),
            paris(2025, 3, 20, 9, 0),
            paris(2025, 3, 24, 9, 0),
            paris(2025, 3, 27, 9, 0),
        ]
        for lesson in series.lessons.all():
            assert lesson.series_start == lesson.starts_at
            assert (lesson.ends_at - lesson.starts_at).total_seconds() == 55 * 60
            assert (lesson.title, lesson.school_id, lesson.is_exception) == (
                "Maths",
                campus.school_a.pk,
                False,
            )
        assert series.created_by == campus.teacher_x

    def test_weekdays_are_kept_in_week_order_once_each(self, campus):
        series = create(campus, weekdays=["TH", "MO", "TH"])
        assert series.weekdays == "MO,TH"

    def test_without_a_last_day_the_series_runs_to_the_end_of_the_term(self, campus):
        term = TermFactory.create(
            school=campus.school_a, starts_on=date(2025, 1, 6), ends_on=date(2025, 4, 4)
        )
        school_class = SchoolClassFactory.create(school=campus.school_a, term=term)
        series = create(
            campus,
            actor=teacher_of(school_class),
            school_class=school_class,
            weekdays=["FR"],
            ends_on=None,
        )
        assert series.ends_on == date(2025, 4, 4)
        assert local_starts(series)[-1] == paris(2025, 4, 4, 9, 0)
        assert series.lessons.count() == 3

    def test_nine_oclock_in_paris_stays_nine_oclock_across_the_spring_change(self, campus):
        # Clocks go forward on Sunday 30 March 2025: 09:00 is 08:00 UTC before, 07:00 UTC after.
        series = create(
            campus,
            weekdays=["SA", "SU", "MO"],
            starts_on=date(2025, 3, 29),
            ends_on=date(2025, 3, 31),
        )
        assert utc_starts(series) == [
            datetime(2025, 3, 29, 8, 0, tzinfo=UTC),
            datetime(2025, 3, 30, 7, 0, tzinfo=UTC),
            datetime(2025, 3, 31, 7, 0, tzinfo=UTC),
        ]
        assert {start.time() for start in local_starts(series)} == {time(9, 0)}

    def test_nine_oclock_in_paris_stays_nine_oclock_across_the_autumn_change(self, campus):
        # Clocks go back on Sunday 26 October 2025: 09:00 is 07:00 UTC before, 08:00 UTC after.
        series = create(
            campus,
            weekdays=["SA", "SU", "MO"],
            starts_on=date(2025, 10, 25),
            ends_on=date(2025, 10, 27),
        )
        assert utc_starts(series) == [
            datetime(2025, 10, 25, 7, 0, tzinfo=UTC),
            datetime(2025, 10, 26, 8, 0, tzinfo=UTC),
            datetime(2025, 10, 27, 8, 0, tzinfo=UTC),
        ]
        assert {start.time() for start in local_starts(series)} == {time(9, 0)}

    def test_a_weekly_series_over_the_whole_year_keeps_its_local_time(self, campus):
        series = create(
            campus, weekdays=["TU"], starts_on=date(2025, 3, 13), ends_on=date(2026, 3, 12)
        )
        starts = local_starts(series)
        assert len(starts) == 52
        assert {(start.weekday(), start.time()) for start in starts} == {(1, time(9, 0))}

    def test_an_occurrence_already_past_today_is_not_made(self, campus):
        # Now is Wednesday 12 March, 10:30 in Paris.
        series = create(
            campus, weekdays=["WE"], starts_on=date(2025, 3, 12), ends_on=date(2025, 3, 19)
        )
        assert local_starts(series) == [paris(2025, 3, 19, 9, 0)]

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"weekdays": []}, "weekdays"),
            ({"weekdays": ["XX"]}, "weekdays"),
            ({"weekdays": ["WE"], "ends_on": date(2025, 3, 18)}, "weekdays"),
            ({"ends_on": date(2025, 3, 16)}, "ends_on"),
            ({"starts_on": date(2025, 3, 11)}, "starts_on"),
            ({"duration_minutes": 0}, "duration_minutes"),
            ({"duration_minutes": 601}, "duration_minutes"),
            ({"title": ""}, "title"),
            ({"ends_on": date(2041, 1, 1)}, "ends_on"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(self, campus, fields, field):
        with pytest.raises(ValidationError) as refused:
            create(campus, **fields)
        assert field in refused.value.message_dict
        assert not LessonSeries.objects.exists()

    @pytest.mark.parametrize(
        "person", ["pupil_x", "teacher_y", "admin_b", "guardian_a", "outsider"]
    )
    def test_only_those_who_schedule_the_class_create_a_series(self, campus, person):
        with pytest.raises(NotFound):
            create(campus, actor=campus.person(person))
        assert not LessonSeries.objects.exists()

    def test_a_school_admin_creates_a_series(self, campus):
        assert create(campus, actor=campus.admin_a).lessons.count() == 4


class TestExceptions:
    def test_cancelling_or_moving_one_occurrence_makes_it_an_exception(self, campus):
        series = create(campus)
        first, second, *_rest = series.lessons.order_by("starts_at")
        services.lesson_cancel(actor=campus.teacher_x, lesson=first)
        services.lesson_update(
            actor=campus.teacher_x, lesson=second, starts_at=paris(2025, 3, 21, 14, 0)
        )
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.state, first.is_exception, first.sequence) == ("cancelled", True, 1)
        assert (second.is_exception, second.sequence) == (True, 1)
        assert second.series_start == paris(2025, 3, 20, 9, 0)
        assert series.lessons.filter(is_exception=False, state="scheduled").count() == 2


class TestUpdateFrom:
    def test_changing_the_time_from_a_day_on_splits_the_series_and_moves_later_lessons(
        self, campus, notices, django_capture_on_commit_callbacks
    ):
        series = create(campus)
        keys = dict(series.lessons.values_list("starts_at", "key"))
        with django_capture_on_commit_callbacks(execute=True):
            new = services.series_update_from(
                actor=campus.teacher_x,
                series=series,
                from_date=date(2025, 3, 24),
                start_time=time(10, 0),
                title="Maths (room 4)",
            )
        series.refresh_from_db()
        assert series.ends_on == date(2025, 3, 23)
        assert new.pk != series.pk
        assert (new.starts_on, new.ends_on, new.start_time, new.weekdays) == (
            date(2025, 3, 24),
            date(2025, 3, 30),
            time(10, 0),
            "MO,TH",
        )
        assert local_starts(series) == [paris(2025, 3, 17, 9, 0), paris(2025, 3, 20, 9, 0)]
        assert set(series.lessons.values_list("title", flat=True)) == {"Maths"}
        assert local_starts(new) == [paris(2025, 3, 24, 10, 0), paris(2025, 3, 27, 10, 0)]
        moved = list(new.lessons.order_by("starts_at"))
        # The same lessons, moved: same keys, so links and calendar entries stay valid.
        assert [lesson.key for lesson in moved] == [
            keys[paris(2025, 3, 24, 9, 0)],
            keys[paris(2025, 3, 27, 9, 0)],
        ]
        assert [(lesson.title, lesson.sequence) for lesson in moved] == [("Maths (room 4)", 1)] * 2
        # 24 and 27 March are more than a week away (the notice horizon): no notice.
        assert notices == []

    def test_a_change_to_lessons_within_a_week_is_announced(
        self, campus, notices, django_capture_on_commit_callbacks
    ):
        series = create(campus, starts_on=date(2025, 3, 13))
        thursday = series.lessons.get(starts_at=paris(2025, 3, 13, 9, 0))
        with django_capture_on_commit_callbacks(execute=True):
            services.series_update_from(
                actor=campus.teacher_x,
                series=series,
                from_date=date(2025, 3, 13),
                start_time=time(11, 0),
            )
        assert (thursday.pk, "moved") in notices
        assert len(notices) == 2  # Thursday 13 and Monday 17 March; later ones are quiet

    def test_exceptions_are_kept_and_their_day_gets_no_new_lesson(self, campus):
        series = create(campus)
        lessons = list(series.lessons.order_by("starts_at"))
        cancelled = services.lesson_cancel(actor=campus.teacher_x, lesson=lessons[2])
        moved = services.lesson_update(
            actor=campus.teacher_x, lesson=lessons[3], starts_at=paris(2025, 3, 28, 14, 0)
        )
        new = services.series_update_from(
            actor=campus.teacher_x,
            series=series,
            from_date=date(2025, 3, 18),
            start_time=time(8, 0),
        )
        cancelled.refresh_from_db()
        moved.refresh_from_db()
        assert (cancelled.state, cancelled.starts_at) == ("cancelled", paris(2025, 3, 24, 9, 0))
        assert moved.starts_at == paris(2025, 3, 28, 14, 0)
        assert {cancelled.series_id, moved.series_id} == {new.pk}
        assert local_starts(new.lessons.filter(state="scheduled", is_exception=False)) == [
            paris(2025, 3, 20, 8, 0)
        ]
        assert not Lesson.objects.filter(starts_at=paris(2025, 3, 24, 8, 0)).exists()
        assert not Lesson.objects.filter(starts_at=paris(2025, 3, 27, 8, 0)).exists()

    def test_changing_the_weekdays_cancels_lessons_left_without_a_day_and_adds_new_ones(
        self, campus
    ):
        series = create(campus)
        thursday_keys = set(
            series.lessons.filter(starts_at__gte=paris(2025, 3, 24, 0, 0))
            .filter(starts_at__in=[paris(2025, 3, 27, 9, 0)])
            .values_list("key", flat=True)
        )
        new = services.series_update_from(
            actor=campus.teacher_x,
            series=series,
            from_date=date(2025, 3, 24),
            weekdays=["MO", "FR"],
        )
        assert local_starts(new) == [paris(2025, 3, 24, 9, 0), paris(2025, 3, 28, 9, 0)]
        thursday = Lesson.objects.get(key__in=thursday_keys)
        assert (thursday.state, thursday.series_id, thursday.sequence) == (
            LessonState.CANCELLED,
            series.pk,
            1,
        )

    def test_a_series_not_begun_yet_is_changed_in_place(self, campus):
        series = create(campus)
        same = services.series_update_from(
            actor=campus.teacher_x,
            series=series,
            from_date=date(2025, 3, 12),
            duration_minutes=45,
            ends_on=date(2025, 3, 23),
        )
        assert same.pk == series.pk
        series.refresh_from_db()
        assert (series.starts_on, series.ends_on, series.duration_minutes) == (
            date(2025, 3, 17),
            date(2025, 3, 23),
            45,
        )
        scheduled = series.lessons.filter(state="scheduled").order_by("starts_at")
        assert [(lesson.ends_at - lesson.starts_at).seconds for lesson in scheduled] == [2700] * 2
        assert series.lessons.filter(state="cancelled").count() == 2

    def test_a_change_that_changes_nothing_writes_nothing(self, campus):
        series = create(campus)
        same = services.series_update_from(
            actor=campus.teacher_x, series=series, from_date=date(2025, 3, 20), title="Maths"
        )
        assert same == series
        assert LessonSeries.objects.count() == 1
        assert set(series.lessons.values_list("sequence", flat=True)) == {0}

    def test_a_later_change_revives_lessons_an_earlier_change_cancelled(self, campus):
        series = create(campus)
        keys = set(series.lessons.values_list("key", flat=True))
        services.series_update_from(
            actor=campus.teacher_x, series=series, from_date=date(2025, 3, 12), weekdays=["TU"]
        )
        services.series_update_from(
            actor=campus.teacher_x,
            series=series,
            from_date=date(2025, 3, 12),
            weekdays=["MO", "TH"],
        )
        assert set(series.lessons.filter(state="scheduled").values_list("key", flat=True)) == keys

    @pytest.mark.parametrize(
        ("from_date", "match"),
        [(date(2025, 3, 11), "today or a later day"), (date(2025, 4, 1), "The series ends")],
    )
    def test_the_day_of_the_change_is_today_or_later_within_the_series(
        self, campus, from_date, match
    ):
        series = create(campus)
        with pytest.raises(ValidationError, match=match):
            services.series_update_from(
                actor=campus.teacher_x, series=series, from_date=from_date, title="Later"
            )

    @pytest.mark.parametrize("person", ["pupil_x", "teacher_y", "admin_b"])
    def test_only_those_who_schedule_the_class_change_its_series(self, campus, person):
        series = create(campus)
        with pytest.raises(NotFound):
            services.series_update_from(
                actor=campus.person(person), series=series, from_date=date(2025, 3, 20), title="X"
            )
        with pytest.raises(NotFound):
            services.series_cancel_from(
                actor=campus.person(person), series=series, from_date=date(2025, 3, 20)
            )
        assert series.lessons.filter(state="scheduled").count() == 4


class TestCancelFrom:
    def test_ending_a_series_early_cancels_its_later_lessons_but_not_its_exceptions(
        self, campus, notices, django_capture_on_commit_callbacks
    ):
        series = create(campus, starts_on=date(2025, 3, 13))
        moved = services.lesson_update(
            actor=campus.teacher_x,
            lesson=series.lessons.get(starts_at=paris(2025, 3, 27, 9, 0)),
            starts_at=paris(2025, 3, 26, 9, 0),
        )
        monday = series.lessons.get(starts_at=paris(2025, 3, 17, 9, 0))
        with django_capture_on_commit_callbacks(execute=True):
            count = services.series_cancel_from(
                actor=campus.teacher_x, series=series, from_date=date(2025, 3, 17)
            )
        assert count == 3  # 17, 20 and 24 March; the 27th, moved, stays
        series.refresh_from_db()
        assert series.ends_on == date(2025, 3, 16)
        assert local_starts(series.lessons.filter(state="scheduled")) == [
            paris(2025, 3, 13, 9, 0),
            paris(2025, 3, 26, 9, 0),
        ]
        moved.refresh_from_db()
        assert moved.state == "scheduled"
        # Only the lessons of the coming week (to 19 March, 10:30) are announced.
        assert notices == [(monday.pk, "cancelled")]
