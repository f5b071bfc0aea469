"""Who may join a live lesson: `RosterLessonAccess`, classrooms' side of the relay's port."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import Membership, Role
from classrooms.access import RosterLessonAccess
from classrooms.models import Enrollment, EnrollmentRole, LessonState
from media_relay.ports import (
    Admission,
    LessonAccessPolicy,
    ParticipantRole,
    Refusal,
    lesson_access_policy,
)
from tests.factories import EnrollmentFactory, LessonFactory, UserFactory, lesson_now

pytestmark = pytest.mark.django_db


def admit(user, key: str) -> Admission | Refusal:
    return RosterLessonAccess().admit(user_id=user.pk, lesson_key=key)


def test_the_configured_policy_is_the_roster_policy():
    policy: LessonAccessPolicy = lesson_access_policy()
    assert isinstance(policy, RosterLessonAccess)


def test_the_class_teacher_is_admitted_as_teacher_with_their_roster_name(campus):
    admission = admit(campus.teacher_x, campus.lesson_x.key)
    assert admission == Admission(
        lesson_key=campus.lesson_x.key,
        lesson_id=campus.lesson_x.pk,
        school_id=campus.school_a.pk,
        user_id=campus.teacher_x.pk,
        role=ParticipantRole.TEACHER,
        display_name="Theo Xenakis",
        lesson_title="Fractions",
        ends_at=campus.lesson_x.ends_at,
        roster_size=Enrollment.objects.filter(school_class=campus.class_x).count(),
    )


def test_a_pupil_on_the_roster_is_admitted_as_pupil_with_their_roster_name(campus):
    admission = admit(campus.pupil_x, campus.lesson_x.key)
    assert isinstance(admission, Admission)
    assert admission.role is ParticipantRole.PUPIL
    assert admission.display_name == "Pia Xavier"
    assert admission.user_id == campus.pupil_x.pk


@pytest.mark.parametrize(
    "person",
    [
        "pupil_y",
        "teacher_y",
        "admin_a",
        "guardian_a",
        "pupil_z",
        "teacher_z",
        "admin_b",
        "outsider",
    ],
    ids=[
        "a pupil of another class",
        "a teacher of another class",
        "the school's admin, who is on no roster",
        "a pupil's guardian",
        "a pupil of another school",
        "a teacher of another school",
        "another school's admin",
        "a user of no school",
    ],
)
def test_anyone_not_on_the_roster_is_refused_as_not_on_roster(campus, person):
    assert admit(campus.person(person), campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


def test_an_unknown_key_is_refused_as_not_on_roster(campus):
    """A key that does not exist is refused exactly as one the user is not on the roster of."""
    assert admit(campus.pupil_x, "not-a-lesson-key") is Refusal.NOT_ON_ROSTER


@pytest.mark.parametrize("key", ["\x00", "a\x00b", "x" * 5000], ids=["NUL", "NUL inside", "long"])
def test_a_key_no_lesson_could_have_is_refused_as_not_on_roster(campus, key):
    """Keys come from the websocket URL: a NUL byte (which PostgreSQL text refuses) is refused."""
    assert admit(campus.pupil_x, key) is Refusal.NOT_ON_ROSTER


def test_a_deactivated_pupil_is_refused(campus):
    assert admit(campus.inactive_pupil_x, campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


def test_a_pupil_left_on_the_roster_after_leaving_the_school_is_refused(campus):
    assert admit(campus.leaver_x, campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


def test_a_pupil_whose_membership_was_removed_is_refused(campus):
    Membership.objects.filter(user=campus.pupil_x).delete()
    assert admit(campus.pupil_x, campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


def test_a_teacher_enrollment_needs_a_teacher_membership(campus):
    """A pupil of the school put on a roster as teacher does not join with a teacher's powers."""
    Enrollment.objects.filter(user=campus.pupil_x).update(role=EnrollmentRole.TEACHER)
    assert admit(campus.pupil_x, campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


def test_an_enrollment_recorded_under_another_school_is_refused(campus):
    """A roster row whose school disagrees with the lesson's school grants nothing."""
    user = UserFactory.create()
    Membership.objects.create(user=user, school=campus.school_a, role=Role.PUPIL)
    EnrollmentFactory.create(user=user, school_class=campus.class_x, school=campus.school_b)
    assert admit(user, campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


@pytest.mark.parametrize("state", [LessonState.CANCELLED, LessonState.ENDED])
def test_a_cancelled_or_ended_lesson_is_not_open(campus, state):
    campus.lesson_x.state = state
    campus.lesson_x.save()
    assert admit(campus.pupil_x, campus.lesson_x.key) is Refusal.NOT_OPEN
    assert admit(campus.teacher_x, campus.lesson_x.key) is Refusal.NOT_OPEN


def test_a_lesson_more_than_ten_minutes_away_is_not_open(campus, frozen_now):
    lesson = LessonFactory.create(
        school_class=campus.class_x, starts_at=frozen_now + timedelta(minutes=10, seconds=1)
    )
    assert admit(campus.pupil_x, lesson.key) is Refusal.NOT_OPEN


def test_a_lesson_ten_minutes_away_is_open(campus, frozen_now):
    lesson = LessonFactory.create(
        school_class=campus.class_x, starts_at=frozen_now + timedelta(minutes=10)
    )
    assert isinstance(admit(campus.pupil_x, lesson.key), Admission)


def test_a_lesson_that_is_over_is_not_open(campus, frozen_now):
    lesson = lesson_now(campus.class_x, now=frozen_now - timedelta(minutes=50))
    assert lesson.ends_at == frozen_now
    assert admit(campus.pupil_x, lesson.key) is Refusal.NOT_OPEN


def test_a_closed_lesson_tells_an_outsider_only_that_they_are_not_on_the_roster(campus):
    """Refusals do not reveal a lesson's state to someone who is not on its roster."""
    campus.lesson_z.state = LessonState.CANCELLED
    campus.lesson_z.save()
    assert admit(campus.pupil_x, campus.lesson_z.key) is Refusal.NOT_ON_ROSTER


def test_a_participant_needs_a_display_name():
    with pytest.raises(ValueError, match="display name"):
        Admission(
            lesson_key="k",
            lesson_id=1,
            school_id=1,
            user_id=1,
            role=ParticipantRole.PUPIL,
            display_name="  ",
            lesson_title="t",
            ends_at=LessonFactory.build().ends_at,
        )


def test_an_admission_needs_an_aware_end():
    with pytest.raises(ValueError, match="aware"):
        Admission(
            lesson_key="k",
            lesson_id=1,
            school_id=1,
            user_id=1,
            role=ParticipantRole.PUPIL,
            display_name="Léa",
            lesson_title="t",
            ends_at=LessonFactory.build().ends_at.replace(tzinfo=None),
        )
