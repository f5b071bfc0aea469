"""The attendance pages through the test client: a lesson's register, its CSV, corrections, and a
class's term summary. Only the class's teachers and the school's admins see them; everyone else
gets a 404. Each page costs a fixed number of queries however many pupils, lessons and intervals.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

from accounts.models import Membership, User
from classrooms.models import (
    AttendanceCorrection,
    AuditAction,
    AuditEvent,
    Lesson,
    LessonState,
    PresenceInterval,
)
from tests.factories import (
    LessonFactory,
    PresenceIntervalFactory,
    TermFactory,
    pupil_of,
)

pytestmark = pytest.mark.django_db

VIEWERS = ["teacher_x", "admin_a"]
OUTSIDERS = [
    "pupil_x",
    "guardian_a",
    "teacher_y",
    "pupil_y",
    "admin_b",
    "teacher_z",
    "pupil_z",
    "outsider",
    "leaver_x",
]


def lesson_page(lesson: Lesson) -> str:
    return f"/lessons/{lesson.key}/attendance/"


def csv_url(lesson: Lesson) -> str:
    return f"/lessons/{lesson.key}/attendance.csv"


def class_page(class_id: int) -> str:
    return f"/classes/{class_id}/attendance/"


def was_there(lesson: Lesson, user: User, start: float, end: float | None, seen: float = 0):
    """An interval from `start` to `end` minutes after the lesson's start (open when None)."""
    minute = timedelta(minutes=1)
    joined = lesson.starts_at + start * minute
    return PresenceIntervalFactory.create(
        lesson=lesson,
        user=user,
        joined_at=joined,
        left_at=None if end is None else lesson.starts_at + end * minute,
        last_seen_at=lesson.starts_at + (end if end is not None else max(seen, start)) * minute,
    )


def past_lesson(campus, *, days: int, **fields) -> Lesson:
    """A lesson of class X `days` ago, at the time lesson X started today (10:25 in Paris)."""
    starts_at = campus.lesson_x.starts_at - timedelta(days=days)
    fields.setdefault("state", LessonState.SCHEDULED)
    lesson: Lesson = LessonFactory.create(
        school_class=campus.class_x,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=55),
        **fields,
    )
    return lesson


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


# --- Who sees them --------------------------------------------------------------------------------


@pytest.mark.parametrize("person", VIEWERS)
def test_the_class_teacher_and_the_school_admin_see_every_attendance_page(client, campus, person):
    client.force_login(campus.person(person))
    for url in (
        lesson_page(campus.lesson_x),
        csv_url(campus.lesson_x),
        class_page(campus.class_x.pk),
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("person", OUTSIDERS)
def test_pupils_guardians_other_teachers_and_other_schools_get_404(client, campus, person):
    client.force_login(campus.person(person))
    for url in (
        lesson_page(campus.lesson_x),
        csv_url(campus.lesson_x),
        class_page(campus.class_x.pk),
    ):
        assert client.get(url).status_code == 404, url
    response = client.post(
        lesson_page(campus.lesson_x),
        {"pupil": campus.pupil_x.pk, "status": "present", "reason": "me"},
    )
    assert response.status_code == 404
    assert not AttendanceCorrection.objects.exists()


def test_a_teacher_who_left_the_school_gets_404(client, campus):
    Membership.objects.filter(user=campus.teacher_x).delete()
    client.force_login(campus.teacher_x)
    assert client.get(lesson_page(campus.lesson_x)).status_code == 404


def test_someone_not_logged_in_is_sent_to_log_in(client, campus):
    response = client.get(lesson_page(campus.lesson_x))
    assert response.status_code == 302
    assert "login" in response["Location"]


@pytest.mark.parametrize("key", ["nope", "x" * 40, "a" * 22])
def test_a_key_that_is_no_lesson_is_404(client, campus, key):
    client.force_login(campus.teacher_x)
    assert client.get(f"/lessons/{key}/attendance/").status_code == 404
    assert client.get(f"/lessons/{key}/attendance.csv").status_code == 404


def test_an_unknown_class_is_404(client, campus):
    client.force_login(campus.admin_a)
    assert client.get(class_page(campus.class_z.pk)).status_code == 404
    assert client.get(class_page(999_999)).status_code == 404


# --- The register ---------------------------------------------------------------------------------


def test_the_register_shows_each_pupil_and_teacher_with_status_times_and_reconnects(client, campus):
    lesson = campus.lesson_x
    late = pupil_of(campus.class_x, given_name="Lou", family_name="Late")
    absent = pupil_of(campus.class_x, given_name="Abe", family_name="Absent")
    was_there(lesson, campus.teacher_x, -3, None, seen=5)
    was_there(lesson, campus.pupil_x, -1, 2)
    was_there(lesson, campus.pupil_x, 2.2, None, seen=5)
    client.force_login(campus.teacher_x)
    response = client.get(lesson_page(lesson))
    rows = {row.user.pk: row.attendance for row in response.context["attendance"].rows}
    assert rows[campus.pupil_x.pk].status == "present"
    assert rows[campus.pupil_x.pk].reconnects == 1
    assert rows[absent.pk].status == "absent"
    # Lou has not come yet: absent so far.
    assert rows[late.pk].status == "absent"
    html = response.content.decode()
    for name in ("Pia Xavier", "Lou Late", "Abe Absent", "Theo Xenakis"):
        assert name in html
    # Paris is UTC+1 in March: the lesson started at 10:25 and Pia joined at 10:24.
    assertContains(response, ">10:24</time>")
    assertContains(response, "still here")
    assertContains(response, csv_url(lesson))
    assertContains(response, "The lesson is still running")


def test_the_timeline_draws_a_bar_per_presence_on_a_labelled_local_time_axis(client, campus):
    lesson = past_lesson(campus, days=1, state=LessonState.ENDED)
    was_there(lesson, campus.pupil_x, 0, 20)
    was_there(lesson, campus.pupil_x, 30, 55)
    was_there(lesson, campus.teacher_x, -2, 56)
    client.force_login(campus.teacher_x)
    response = client.get(lesson_page(lesson))
    html = response.content.decode()
    assert 'role="img" aria-labelledby="timeline-title timeline-desc"' in html
    assert "<title>Pia Xavier: 10:25\u201310:45</title>" in html
    assert "<title>Pia Xavier: 10:55\u201311:20</title>" in html
    assert "<title>Theo Xenakis: 10:23\u201311:21</title>" in html
    assert html.count('class="timeline__bar"') == 3
    # The start and end ticks, in Paris time.
    assert html.count("timeline__tick timeline__tick--edge") == 2
    assert ">10:25</text>" in html
    assert ">11:20</text>" in html
    assert "not connected" in html


def test_statuses_of_a_finished_lesson_follow_the_school_thresholds(client, campus):
    lesson = past_lesson(campus, days=1)
    early = pupil_of(campus.class_x, given_name="Eve", family_name="Early")
    late = pupil_of(campus.class_x, given_name="Lou", family_name="Late")
    was_there(lesson, campus.pupil_x, 0, 55)
    was_there(lesson, early, 0, 30)
    was_there(lesson, late, 12, 55)
    client.force_login(campus.teacher_x)
    rows = {
        row.user.pk: row.attendance
        for row in client.get(lesson_page(lesson)).context["attendance"].rows
    }
    assert rows[campus.pupil_x.pk].status == "present"
    assert rows[early.pk].status == "left_early"
    assert rows[late.pk].status == "late"
    assert rows[late.pk].minutes == 43


def test_a_lesson_ended_by_its_teacher_measures_leaving_against_that_end(client, campus):
    lesson = campus.lesson_x
    was_there(lesson, campus.pupil_x, 0, 5)
    AuditEvent.objects.create(
        school=campus.school_a,
        action=AuditAction.LESSON_ENDED,
        target_type="lesson",
        target_id=str(lesson.pk),
        at=lesson.starts_at + timedelta(minutes=5),
    )
    Lesson.objects.filter(pk=lesson.pk).update(state=LessonState.ENDED)
    client.force_login(campus.teacher_x)
    rows = {
        row.user.pk: row.attendance
        for row in client.get(lesson_page(lesson)).context["attendance"].rows
    }
    assert rows[campus.pupil_x.pk].status == "present"


def test_the_register_costs_the_same_queries_for_a_crowded_lesson(client, campus):
    lesson = past_lesson(campus, days=1)
    client.force_login(campus.teacher_x)
    small = count_queries(client, lesson_page(lesson))
    for n in range(25):
        pupil = pupil_of(campus.class_x, given_name=f"Crowd{n}")
        was_there(lesson, pupil, n, n + 10)
        was_there(lesson, pupil, n + 11, 55)
        if n % 5 == 0:
            AttendanceCorrection.objects.create(
                lesson=lesson, pupil=pupil, status="present", reason="ok", corrected_by=None
            )
    assert count_queries(client, lesson_page(lesson)) == small
    assert count_queries(client, csv_url(lesson)) <= small


# --- Corrections ----------------------------------------------------------------------------------


def correct(
    client: Client,
    lesson: Lesson,
    pupil: User,
    status: str = "present",
    reason: str = "Was in the library, connected late",
) -> _MonkeyPatchedWSGIResponse:
    return client.post(lesson_page(lesson), {"pupil": pupil.pk, "status": status, "reason": reason})


def test_a_teacher_corrects_a_status_with_a_reason_and_it_is_audited(client, campus, frozen_now):
    lesson = past_lesson(campus, days=1)
    client.force_login(campus.teacher_x)
    response = correct(client, lesson, campus.pupil_x)
    assert response.status_code == 302
    assert response["Location"] == lesson_page(lesson)
    correction = AttendanceCorrection.objects.get()
    assert (correction.pupil, correction.status, correction.corrected_by) == (
        campus.pupil_x,
        "present",
        campus.teacher_x,
    )
    assert correction.corrected_at == frozen_now
    [event] = AuditEvent.objects.filter(action=AuditAction.ATTENDANCE_CORRECTED)
    assert event.actor == campus.teacher_x
    assert event.school == campus.school_a
    assert event.details == {
        "pupil_id": campus.pupil_x.pk,
        "lesson_key": lesson.key,
        "old_status": "absent",
        "new_status": "present",
        "reason": "Was in the library, connected late",
    }
    page = client.get(lesson_page(lesson))
    assertContains(page, "corrected")
    assertContains(page, "Was in the library, connected late")
    assertContains(page, "status-pill--present")


def test_the_latest_correction_wins_and_the_audit_keeps_the_old_status(client, campus):
    lesson = past_lesson(campus, days=1)
    client.force_login(campus.admin_a)
    correct(client, lesson, campus.pupil_x, status="late", reason="first")
    correct(client, lesson, campus.pupil_x, status="left_early", reason="second thoughts")
    rows = {
        row.user.pk: row.attendance
        for row in client.get(lesson_page(lesson)).context["attendance"].rows
    }
    assert rows[campus.pupil_x.pk].status == "left_early"
    assert rows[campus.pupil_x.pk].correction.reason == "second thoughts"
    last = AuditEvent.objects.filter(action=AuditAction.ATTENDANCE_CORRECTED).first()
    assert last is not None
    assert (last.details["old_status"], last.details["new_status"]) == ("late", "left_early")


@pytest.mark.parametrize(
    ("status", "reason"),
    [("present", ""), ("present", "   "), ("excused", "ill"), ("present", "x" * 301)],
    ids=["no reason", "blank reason", "unknown status", "reason too long"],
)
def test_a_correction_needs_a_known_status_and_a_reason(client, campus, status, reason):
    lesson = past_lesson(campus, days=1)
    client.force_login(campus.teacher_x)
    response = correct(client, lesson, campus.pupil_x, status=status, reason=reason)
    assert response.status_code == 400
    assertContains(response, "The correction was not saved", status_code=400)
    assert not AttendanceCorrection.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.ATTENDANCE_CORRECTED).exists()


@pytest.mark.parametrize("person", ["teacher_x", "pupil_y", "pupil_z"])
def test_only_a_pupil_of_the_class_can_be_corrected(client, campus, person):
    client.force_login(campus.teacher_x)
    response = correct(client, campus.lesson_x, campus.person(person))
    assert response.status_code == 404
    assert not AttendanceCorrection.objects.exists()


@pytest.mark.parametrize("pupil", ["", "abc", "99999999999999999999", "-3"])
def test_a_malformed_pupil_is_refused_without_an_error(client, campus, pupil):
    client.force_login(campus.teacher_x)
    response = client.post(
        lesson_page(campus.lesson_x), {"pupil": pupil, "status": "present", "reason": "x"}
    )
    assert response.status_code == 400
    assert not AttendanceCorrection.objects.exists()


# --- CSV ------------------------------------------------------------------------------------------


def csv_rows(response) -> list[list[str]]:
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_csv_has_a_row_per_pupil_with_local_times(client, campus):
    lesson = past_lesson(campus, days=1)
    was_there(lesson, campus.pupil_x, 0, 20)
    was_there(lesson, campus.pupil_x, 20.25, 30)
    client.force_login(campus.teacher_x)
    correct(client, lesson, campus.pupil_x, status="present", reason="Network trouble at home")
    response = client.get(csv_url(lesson))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="attendance-5x-maths-2025-03-11.csv"'
    )
    header, *rows = csv_rows(response)
    assert header == [
        "Name",
        "Email",
        "Status",
        "Correction reason",
        "First join",
        "Last leave",
        "Minutes connected",
        "Reconnects",
    ]
    by_name = {row[0]: row for row in rows}
    assert "Theo Xenakis" not in by_name
    assert by_name["Pia Xavier"] == [
        "Pia Xavier",
        campus.pupil_x.email,
        "present",
        "Network trouble at home",
        "2025-03-11T10:25:00+01:00",
        "2025-03-11T10:55:00+01:00",
        "30",
        "1",
    ]
    assert by_name["Ines Gone"][2:] == ["absent", "", "", "", "0", "0"]


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_the_csv_never_hands_a_spreadsheet_a_formula(client, campus, start):
    lesson = past_lesson(campus, days=1)
    sly = pupil_of(campus.class_x, given_name=f'{start}HYPERLINK("http://x")', family_name="")
    client.force_login(campus.teacher_x)
    correct(client, lesson, sly, status="absent", reason=f"{start}1+1")
    rows = csv_rows(client.get(csv_url(lesson)))
    [row] = [row for row in rows if "HYPERLINK" in row[0]]
    assert row[0] == f'\'{start}HYPERLINK("http://x")'
    assert row[3] == f"'{start}1+1"


# --- A class over a term --------------------------------------------------------------------------


def test_the_term_summary_counts_each_pupils_lessons_that_have_begun(client, campus):
    yesterday = past_lesson(campus, days=1)
    before = past_lesson(campus, days=2)
    three_days = past_lesson(campus, days=3)
    past_lesson(campus, days=4, state=LessonState.CANCELLED)
    LessonFactory.create(school_class=campus.class_x)  # tomorrow: not begun
    was_there(yesterday, campus.pupil_x, 0, 55)
    was_there(before, campus.pupil_x, 10, 55)
    was_there(three_days, campus.pupil_x, 0, 20)
    was_there(campus.lesson_x, campus.pupil_x, 0, None, seen=4)
    client.force_login(campus.teacher_x)
    response = client.get(class_page(campus.class_x.pk))
    summary = response.context["summary"]
    assert summary.term == campus.class_x.term
    assert len(summary.lessons) == 4
    counts = {row.pupil.pk: row.counts for row in summary.pupils}[campus.pupil_x.pk]
    assert (counts.present, counts.late, counts.left_early, counts.absent) == (2, 1, 1, 0)
    assert counts.rate == 1.0
    ines = {row.pupil.display_name: row.counts for row in summary.pupils}["Ines Gone"]
    assert ines.absent == 4
    assert ines.rate == 0
    assertContains(response, lesson_page(yesterday))
    assertContains(response, "100 %")
    assert campus.teacher_x not in [row.pupil for row in summary.pupils]


def test_a_correction_counts_in_the_term_summary(client, campus):
    lesson = past_lesson(campus, days=1)
    client.force_login(campus.teacher_x)
    correct(client, lesson, campus.pupil_x, status="late", reason="Came in at 10:40")
    summary = client.get(class_page(campus.class_x.pk)).context["summary"]
    counts = {row.pupil.pk: row.counts for row in summary.pupils}[campus.pupil_x.pk]
    assert counts.late == 1


def test_another_term_of_the_school_can_be_chosen(client, campus):
    old = TermFactory.create(
        school=campus.school_a, name="2018", starts_on=date(2018, 9, 1), ends_on=date(2019, 7, 1)
    )
    client.force_login(campus.teacher_x)
    response = client.get(class_page(campus.class_x.pk) + f"?term={old.pk}")
    assert response.context["summary"].term == old
    assert response.context["summary"].lessons == ()
    assertContains(response, f'<option value="{old.pk}" selected>')


@pytest.mark.parametrize("raw", ["abc", "", "²", "-1"])
def test_a_malformed_term_falls_back_to_the_current_one(client, campus, raw):
    client.force_login(campus.teacher_x)
    response = client.get(class_page(campus.class_x.pk), {"term": raw})
    assert response.context["summary"].term == campus.class_x.term


def test_another_schools_term_is_404(client, campus):
    client.force_login(campus.teacher_x)
    response = client.get(class_page(campus.class_x.pk), {"term": campus.class_z.term_id})
    assert response.status_code == 404


def test_the_term_summary_costs_the_same_queries_for_a_busier_class(client, campus):
    client.force_login(campus.teacher_x)
    url = class_page(campus.class_x.pk)
    small = count_queries(client, url)
    lessons = [past_lesson(campus, days=days) for days in range(1, 16)]
    pupils = [pupil_of(campus.class_x, given_name=f"Busy{n}") for n in range(12)]
    PresenceInterval.objects.bulk_create(
        PresenceInterval(
            lesson=lesson,
            user=pupil,
            joined_at=lesson.starts_at,
            left_at=lesson.ends_at,
            last_seen_at=lesson.ends_at,
        )
        for lesson in lessons
        for pupil in pupils
    )
    response = client.get(url)
    busy = {row.pupil.pk: row.counts for row in response.context["summary"].pupils}
    assert busy[pupils[0].pk].present == 15
    assert count_queries(client, url) == small


# --- The class page -------------------------------------------------------------------------------


def test_the_class_page_links_its_teacher_to_attendance(client, campus):
    client.force_login(campus.teacher_x)
    response = client.get(f"/classes/{campus.class_x.pk}/")
    assertContains(response, class_page(campus.class_x.pk))
    assertContains(response, lesson_page(campus.lesson_x))


def test_the_class_page_shows_pupils_no_attendance_link(client, campus):
    client.force_login(campus.pupil_x)
    response = client.get(f"/classes/{campus.class_x.pk}/")
    assertNotContains(response, "/attendance/")
