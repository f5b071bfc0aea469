"""The attendance rules (`classrooms.live.attendance`): grace merge, late, left early, absent,
open intervals, corrections and minutes, on plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from classrooms.live.attendance import (
    Correction,
    Interval,
    LessonTimes,
    Span,
    TermCounts,
    Thresholds,
    attendance_of,
    merged_presences,
)
from classrooms.models import AttendanceStatus, School

START = datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
END = START + timedelta(minutes=55)
LESSON = LessonTimes(starts_at=START, ends_at=END)
RULES = Thresholds(
    late_after=timedelta(minutes=5),
    left_early=timedelta(minutes=5),
    reconnect_grace=timedelta(seconds=30),
)
AFTER = END + timedelta(hours=1)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def closed(joined: float, left: float) -> Interval:
    return Interval(joined_at=at(joined), left_at=at(left), last_seen_at=at(left))


def still_open(joined: float, last_seen: float) -> Interval:
    return Interval(joined_at=at(joined), left_at=None, last_seen_at=at(last_seen))


def status(*intervals: Interval, now: datetime = AFTER, lesson: LessonTimes = LESSON) -> str:
    return attendance_of(intervals, lesson=lesson, thresholds=RULES, now=now).status


# --- Merging across reconnects ------------------------------------------------------------------


def test_a_gap_within_the_grace_period_does_not_split_a_presence():
    spans, reconnects = merged_presences(
        [closed(0, 10), closed(10.5, 55)], grace=RULES.reconnect_grace, open_until=None
    )
    assert spans == (Span(start=at(0), end=at(55)),)
    assert reconnects == 1


def test_a_gap_of_exactly_the_grace_period_still_merges():
    spans, _ = merged_presences(
        [closed(0, 10), closed(10.5, 20)], grace=timedelta(seconds=30), open_until=None
    )
    assert len(spans) == 1


def test_a_gap_longer_than_the_grace_period_makes_two_presences():
    spans, reconnects = merged_presences(
        [closed(0, 10), closed(10 + 31 / 60, 20)], grace=RULES.reconnect_grace, open_until=None
    )
    assert [span.start for span in spans] == [at(0), at(10 + 31 / 60)]
    assert reconnects == 1


def test_intervals_are_merged_in_time_order_whatever_order_they_come_in():
    spans, reconnects = merged_presences(
        [closed(30, 40), closed(0, 10), closed(10.25, 29.9)],
        grace=RULES.reconnect_grace,
        open_until=None,
    )
    assert spans == (Span(start=at(0), end=at(40)),)
    assert reconnects == 2


def test_overlapping_intervals_make_one_presence():
    spans, _ = merged_presences([closed(0, 30), closed(20, 25)], grace=timedelta(), open_until=None)
    assert spans == (Span(start=at(0), end=at(30)),)


def test_a_zero_grace_merges_only_touching_intervals():
    spans, _ = merged_presences(
        [closed(0, 10), closed(10, 20), closed(20.1, 30)], grace=timedelta(), open_until=None
    )
    assert len(spans) == 2


def test_no_interval_is_no_presence_and_no_reconnect():
    assert merged_presences([], grace=RULES.reconnect_grace, open_until=None) == ((), 0)


# --- Open intervals -------------------------------------------------------------------------------


def test_an_open_interval_counts_until_now_while_the_lesson_runs():
    record = attendance_of([still_open(0, 10)], lesson=LESSON, thresholds=RULES, now=at(30))
    assert record.presences == (Span(start=at(0), end=at(30)),)
    assert record.still_here
    assert record.last_leave is None
    assert record.minutes == 30


def test_an_open_interval_counts_until_last_seen_once_the_lesson_is_over():
    """A relay that died without closing the interval gives nobody time it did not see."""
    record = attendance_of([still_open(0, 40)], lesson=LESSON, thresholds=RULES, now=AFTER)
    assert record.presences == (Span(start=at(0), end=at(40)),)
    assert not record.still_here
    assert record.last_leave == at(40)
    assert record.status == AttendanceStatus.LEFT_EARLY


def test_an_open_interval_counts_until_last_seen_once_a_teacher_ended_the_lesson():
    lesson = LessonTimes(starts_at=START, ends_at=END, ended_at=at(50))
    record = attendance_of([still_open(0, 49.9)], lesson=lesson, thresholds=RULES, now=at(51))
    assert record.presences[-1].end == at(49.9)


def test_an_open_interval_last_seen_before_it_joined_is_an_empty_presence_not_an_error():
    interval = Interval(joined_at=at(10), left_at=None, last_seen_at=at(9))
    spans, _ = merged_presences([interval], grace=timedelta(), open_until=None)
    assert spans == (Span(start=at(10), end=at(10)),)


# --- Status ---------------------------------------------------------------------------------------


def test_a_pupil_who_never_connected_is_absent():
    record = attendance_of([], lesson=LESSON, thresholds=RULES, now=AFTER)
    assert record.status == AttendanceStatus.ABSENT
    assert record.first_join is None
    assert record.last_leave is None
    assert record.minutes == 0


def test_a_pupil_there_from_start_to_end_is_present():
    assert status(closed(-2, 56)) == AttendanceStatus.PRESENT


def test_joining_exactly_at_the_late_threshold_is_on_time():
    assert status(closed(5, 55)) == AttendanceStatus.PRESENT


def test_joining_after_the_late_threshold_is_late():
    assert status(closed(5.1, 55)) == AttendanceStatus.LATE


def test_leaving_exactly_at_the_left_early_threshold_is_present():
    assert status(closed(0, 50)) == AttendanceStatus.PRESENT


def test_leaving_before_the_left_early_threshold_is_left_early():
    assert status(closed(0, 49.9)) == AttendanceStatus.LEFT_EARLY


def test_nobody_has_left_early_while_the_lesson_runs():
    assert status(closed(0, 10), now=at(20)) == AttendanceStatus.PRESENT


def test_late_wins_over_left_early():
    """A pupil who came late and left early is late: the timeline shows the rest."""
    assert status(closed(20, 30)) == AttendanceStatus.LATE


def test_a_short_drop_near_the_end_does_not_make_a_pupil_leave_early():
    assert status(closed(0, 49.8), closed(50.1, 55)) == AttendanceStatus.PRESENT


def test_a_reconnect_within_grace_keeps_a_pupil_on_time():
    """The first join counts, not the reconnect after a short drop."""
    assert status(closed(1, 2), closed(2.25, 55)) == AttendanceStatus.PRESENT


def test_a_pupil_sent_home_when_the_teacher_ended_the_lesson_did_not_leave_early():
    lesson = LessonTimes(starts_at=START, ends_at=END, ended_at=at(30))
    assert lesson.end == at(30)
    assert status(closed(0, 30), lesson=lesson, now=at(31)) == AttendanceStatus.PRESENT


def test_a_pupil_who_left_well_before_a_teacher_ended_the_lesson_left_early():
    lesson = LessonTimes(starts_at=START, ends_at=END, ended_at=at(30))
    assert status(closed(0, 20), lesson=lesson, now=at(31)) == AttendanceStatus.LEFT_EARLY


def test_a_lesson_ended_before_it_started_ends_at_its_start():
    lesson = LessonTimes(starts_at=START, ends_at=END, ended_at=at(-10))
    assert lesson.end == START
    assert lesson.is_over(at(-5))


# --- Corrections ----------------------------------------------------------------------------------


def test_a_correction_overrides_the_measured_status_and_keeps_its_reason():
    correction = Correction(
        status=AttendanceStatus.PRESENT,
        reason="Connected from the library computer",
        corrected_at=AFTER,
        corrected_by_name="Theo Xenakis",
    )
    record = attendance_of([], lesson=LESSON, thresholds=RULES, now=AFTER, correction=correction)
    assert record.status == AttendanceStatus.PRESENT
    assert record.measured == AttendanceStatus.ABSENT
    assert record.correction is not None
    assert record.correction.reason == "Connected from the library computer"


# --- Minutes --------------------------------------------------------------------------------------


def test_minutes_count_only_the_lessons_own_time():
    """Waiting before the start and staying after the end do not add minutes."""
    record = attendance_of([closed(-8, 60)], lesson=LESSON, thresholds=RULES, now=AFTER)
    assert record.minutes == 55
    assert record.first_join == at(-8)
    assert record.last_leave == at(60)


def test_minutes_include_a_gap_bridged_by_the_grace_period_but_not_a_long_one():
    record = attendance_of(
        [closed(0, 10), closed(10.5, 20), closed(30, 40)],
        lesson=LESSON,
        thresholds=RULES,
        now=AFTER,
    )
    assert record.minutes == 30
    assert record.reconnects == 2
    assert len(record.presences) == 2


def test_minutes_are_rounded_to_the_nearest():
    record = attendance_of([closed(0, 10.6)], lesson=LESSON, thresholds=RULES, now=AFTER)
    assert record.minutes == 11


# --- Thresholds and term counts -------------------------------------------------------------------


def test_thresholds_come_from_the_school():
    school = School(late_after_minutes=7, left_early_minutes=3, reconnect_grace_seconds=45)
    assert Thresholds.of_school(school) == Thresholds(
        late_after=timedelta(minutes=7),
        left_early=timedelta(minutes=3),
        reconnect_grace=timedelta(seconds=45),
    )


def test_term_counts_add_up_and_rate_counts_every_lesson_attended():
    counts = TermCounts()
    for value in ("present", "present", "late", "left_early", "absent"):
        counts = counts.adding(AttendanceStatus(value))
    assert (counts.present, counts.late, counts.left_early, counts.absent) == (2, 1, 1, 1)
    assert counts.lessons == 5
    assert counts.rate == pytest.approx(0.8)


def test_no_lesson_has_no_rate():
    assert TermCounts().rate is None


def test_a_presence_cannot_end_before_it_starts():
    with pytest.raises(ValueError, match="end before"):
        Span(start=at(10), end=at(9))
