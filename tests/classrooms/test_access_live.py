"""What an admission carries into the room, and who stays out: removed pupils (4410), grants from
the school's policy or a teacher's last word, the school's room policy and the roster's size."""

from __future__ import annotations

import pytest

from classrooms.access import RosterLessonAccess
from classrooms.live.recorder import LessonRecords
from classrooms.models import Enrollment, LessonParticipant, LessonState
from media_relay.ports import Admission, Grants, Refusal, RemovedPupil, RoomPolicy
from tests.factories import lesson_now, pupil_of

pytestmark = pytest.mark.django_db


def admit(user, key: str) -> Admission | Refusal:
    return RosterLessonAccess().admit(user_id=user.pk, lesson_key=key)


def admitted(user, key: str) -> Admission:
    admission = admit(user, key)
    assert isinstance(admission, Admission)
    return admission


def test_a_removed_pupil_is_refused_as_removed(campus):
    LessonRecords().participant_removed(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, by_user_id=campus.teacher_x.pk
    )
    assert admit(campus.pupil_x, campus.lesson_x.key) is Refusal.REMOVED
    assert int(Refusal.REMOVED) == 4410


def test_a_teacher_s_admission_lists_the_pupils_removed_from_the_lesson(campus):
    """So that a room rebuilt after a restart can still let them back in; pupils learn nothing."""
    records = LessonRecords()
    ids = {"lesson_id": campus.lesson_x.pk, "user_id": campus.pupil_x.pk}
    records.participant_removed(**ids, by_user_id=campus.teacher_x.pk)
    assert admitted(campus.teacher_x, campus.lesson_x.key).removed == (
        RemovedPupil(user_id=campus.pupil_x.pk, display_name=campus.pupil_x.display_name),
    )
    records.participant_readmitted(**ids, by_user_id=campus.teacher_x.pk)
    assert admitted(campus.teacher_x, campus.lesson_x.key).removed == ()
    assert admitted(campus.pupil_x, campus.lesson_x.key).removed == ()


def test_a_readmitted_pupil_joins_again(campus):
    records = LessonRecords()
    ids = {"lesson_id": campus.lesson_x.pk, "user_id": campus.pupil_x.pk}
    records.participant_removed(**ids, by_user_id=campus.teacher_x.pk)
    records.participant_readmitted(**ids, by_user_id=campus.teacher_x.pk)
    assert isinstance(admit(campus.pupil_x, campus.lesson_x.key), Admission)


def test_a_removal_holds_only_in_its_own_lesson(campus, frozen_now):
    other = lesson_now(campus.class_x, now=frozen_now, title="Decimals")
    LessonRecords().participant_removed(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, by_user_id=campus.teacher_x.pk
    )
    assert isinstance(admit(campus.pupil_x, other.key), Admission)


def test_a_removed_pupil_of_a_lesson_that_ended_hears_it_is_not_open(campus):
    LessonRecords().participant_removed(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, by_user_id=campus.teacher_x.pk
    )
    campus.lesson_x.state = LessonState.ENDED
    campus.lesson_x.save()
    assert admit(campus.pupil_x, campus.lesson_x.key) is Refusal.NOT_OPEN


def test_an_outsider_never_learns_of_a_removal(campus):
    """A removal row says nothing to someone not on the roster: they are refused as ever."""
    LessonRecords().participant_removed(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, by_user_id=campus.teacher_x.pk
    )
    assert admit(campus.pupil_y, campus.lesson_x.key) is Refusal.NOT_ON_ROSTER


def test_a_teacher_holds_every_grant_whatever_the_policy(campus):
    assert admitted(campus.teacher_x, campus.lesson_x.key).grants == Grants(
        mic=True, camera=True, screen=True
    )


def test_a_pupil_starts_muted_with_camera_off_and_no_screen_by_default(campus):
    assert admitted(campus.pupil_x, campus.lesson_x.key).grants == Grants(
        mic=False, camera=False, screen=False
    )


@pytest.mark.parametrize(
    ("muted", "camera_off", "expected"),
    [
        (False, True, Grants(mic=True, camera=False, screen=False)),
        (True, False, Grants(mic=False, camera=True, screen=False)),
        (False, False, Grants(mic=True, camera=True, screen=False)),
    ],
)
def test_a_pupils_starting_grants_follow_the_school_policy(campus, muted, camera_off, expected):
    school = campus.school_a
    school.pupils_start_muted = muted
    school.pupils_start_camera_off = camera_off
    school.save()
    assert admitted(campus.pupil_x, campus.lesson_x.key).grants == expected


def test_a_teachers_grants_to_a_pupil_come_back_on_the_next_join(campus):
    LessonRecords().grants_saved(
        lesson_id=campus.lesson_x.pk,
        user_id=campus.pupil_x.pk,
        grants=Grants(mic=True, camera=False, screen=True),
        by_user_id=campus.teacher_x.pk,
    )
    assert admitted(campus.pupil_x, campus.lesson_x.key).grants == Grants(
        mic=True, camera=False, screen=True
    )


def test_a_teachers_grants_outrank_a_changed_school_policy(campus):
    LessonParticipant.objects.create(
        lesson=campus.lesson_x,
        user=campus.pupil_x,
        mic_granted=False,
        camera_granted=False,
        screen_granted=False,
    )
    campus.school_a.pupils_start_muted = False
    campus.school_a.save()
    assert admitted(campus.pupil_x, campus.lesson_x.key).grants.mic is False


@pytest.mark.parametrize(
    ("lobby", "pause"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_the_room_policy_is_the_schools(campus, lobby, pause):
    school = campus.school_a
    school.lobby_until_teacher = lobby
    school.pause_pupils_without_teacher = pause
    school.save()
    for person in (campus.pupil_x, campus.teacher_x):
        assert admitted(person, campus.lesson_x.key).policy == RoomPolicy(
            lobby_until_teacher=lobby, pause_pupils_without_teacher=pause
        )


def test_an_admission_costs_four_queries(campus, django_assert_num_queries):
    LessonRecords().participant_removed(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, by_user_id=campus.teacher_x.pk
    )
    classmate = pupil_of(campus.class_x, given_name="Cleo", family_name="Mate")
    for person in (classmate, campus.teacher_x):
        with django_assert_num_queries(4):
            admitted(person, campus.lesson_x.key)


def test_an_admission_carries_the_size_of_the_class_roster(campus):
    """Teachers and pupils enrolled in the lesson's class: the relay bounds offers by it."""
    expected = Enrollment.objects.filter(school_class=campus.lesson_x.school_class).count()
    assert expected > 1
    for person in (campus.pupil_x, campus.teacher_x):
        assert admitted(person, campus.lesson_x.key).roster_size == expected


def test_the_roster_size_counts_only_the_lesson_s_own_class(campus):
    other_class = campus.lesson_y.school_class
    before = admitted(campus.pupil_x, campus.lesson_x.key).roster_size
    pupil_of(other_class)
    assert admitted(campus.pupil_x, campus.lesson_x.key).roster_size == before
    pupil_of(campus.lesson_x.school_class)
    assert admitted(campus.pupil_x, campus.lesson_x.key).roster_size == before + 1
