"""What the relay records through `LessonRecords`: presence (and a restart in between), grants,
removals, chat, the end of a lesson, and the audit rows that go with them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import User
from classrooms.live.recorder import LessonRecords
from classrooms.live.services import LessonRecordError
from classrooms.models import (
    AuditAction,
    AuditEvent,
    ChatMessage,
    Lesson,
    LessonParticipant,
    LessonState,
    PresenceInterval,
)
from media_relay.ports import ChatLine, Grants, LessonRecorder, lesson_recorder
from tests.factories import ChatMessageFactory, PresenceIntervalFactory

pytestmark = pytest.mark.django_db

records = LessonRecords()


def intervals(lesson: Lesson, user: User) -> list[PresenceInterval]:
    return list(PresenceInterval.objects.filter(lesson=lesson, user=user).order_by("joined_at"))


def audit(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def test_the_configured_recorder_is_lesson_records():
    recorder: LessonRecorder = lesson_recorder()
    assert isinstance(recorder, LessonRecords)


# --- Presence -------------------------------------------------------------------------------------


def test_a_connection_opens_an_interval_seen_when_it_joined(campus, frozen_now):
    records.presence_opened(lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, at=frozen_now)
    [interval] = intervals(campus.lesson_x, campus.pupil_x)
    assert interval.joined_at == frozen_now
    assert interval.last_seen_at == frozen_now
    assert interval.left_at is None


def test_a_disconnection_closes_the_open_interval(campus, frozen_now):
    lesson, pupil = campus.lesson_x, campus.pupil_x
    records.presence_opened(lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now)
    records.presence_closed(
        lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now + timedelta(minutes=7)
    )
    [interval] = intervals(lesson, pupil)
    assert interval.left_at == frozen_now + timedelta(minutes=7)
    assert interval.last_seen_at == interval.left_at


def test_a_second_report_of_the_same_disconnection_changes_nothing(campus, frozen_now):
    """The relay may report a failed peer connection and then the closed socket."""
    lesson, pupil = campus.lesson_x, campus.pupil_x
    records.presence_opened(lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now)
    records.presence_closed(
        lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now + timedelta(minutes=1)
    )
    records.presence_closed(
        lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now + timedelta(minutes=2)
    )
    [interval] = intervals(lesson, pupil)
    assert interval.left_at == frozen_now + timedelta(minutes=1)


def test_a_close_reported_before_the_join_is_clamped_to_the_join(campus, frozen_now):
    lesson, pupil = campus.lesson_x, campus.pupil_x
    records.presence_opened(lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now)
    records.presence_closed(
        lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now - timedelta(seconds=1)
    )
    assert intervals(lesson, pupil)[0].left_at == frozen_now


def test_the_heartbeat_moves_only_the_open_intervals_of_the_users_named(
    campus, frozen_now, django_assert_num_queries
):
    lesson = campus.lesson_x
    for user in (campus.pupil_x, campus.teacher_x):
        records.presence_opened(lesson_id=lesson.pk, user_id=user.pk, at=frozen_now)
    earlier = PresenceIntervalFactory.create(
        lesson=lesson, user=campus.pupil_x, joined_at=frozen_now - timedelta(minutes=3)
    )
    elsewhere = PresenceIntervalFactory.create(
        lesson=campus.lesson_y, user=campus.pupil_y, left_at=None, last_seen_at=frozen_now
    )
    beat = frozen_now + timedelta(seconds=20)
    with django_assert_num_queries(1):
        records.presence_seen(lesson_id=lesson.pk, user_ids=[campus.pupil_x.pk], at=beat)
    assert intervals(lesson, campus.pupil_x)[-1].last_seen_at == beat
    assert intervals(lesson, campus.teacher_x)[0].last_seen_at == frozen_now
    earlier.refresh_from_db()
    elsewhere.refresh_from_db()
    assert earlier.last_seen_at == earlier.left_at
    assert elsewhere.last_seen_at == frozen_now


def test_after_a_crash_the_interval_left_open_is_closed_when_last_seen(campus, frozen_now):
    """A server restart never loses what was recorded, and counts nothing it did not see."""
    lesson, pupil = campus.lesson_x, campus.pupil_x
    records.presence_opened(lesson_id=lesson.pk, user_id=pupil.pk, at=frozen_now)
    last_beat = frozen_now + timedelta(seconds=40)
    records.presence_seen(lesson_id=lesson.pk, user_ids=[pupil.pk], at=last_beat)
    # The relay dies here: nobody closes the interval. The pupil comes back to the new process.
    back = frozen_now + timedelta(minutes=2)
    records.presence_opened(lesson_id=lesson.pk, user_id=pupil.pk, at=back)
    first, second = intervals(lesson, pupil)
    assert (first.joined_at, first.left_at) == (frozen_now, last_beat)
    assert (second.joined_at, second.left_at) == (back, None)


@pytest.mark.parametrize("person", ["pupil_y", "pupil_z", "admin_a", "outsider", "guardian_a"])
def test_presence_of_someone_not_on_the_roster_fails_loudly(campus, frozen_now, person):
    with pytest.raises(LessonRecordError, match="not on the roster"):
        records.presence_opened(
            lesson_id=campus.lesson_x.pk, user_id=campus.person(person).pk, at=frozen_now
        )
    assert not PresenceInterval.objects.exists()


def test_presence_in_a_lesson_that_does_not_exist_fails_loudly(campus, frozen_now):
    with pytest.raises(LessonRecordError, match="No lesson"):
        records.presence_opened(lesson_id=999_999, user_id=campus.pupil_x.pk, at=frozen_now)


# --- Grants and removals --------------------------------------------------------------------------


def test_grants_are_saved_and_then_replaced(campus):
    lesson, pupil, teacher = campus.lesson_x, campus.pupil_x, campus.teacher_x
    records.grants_saved(
        lesson_id=lesson.pk,
        user_id=pupil.pk,
        grants=Grants(mic=True, camera=False, screen=True),
        by_user_id=teacher.pk,
    )
    records.grants_saved(
        lesson_id=lesson.pk,
        user_id=pupil.pk,
        grants=Grants(mic=False, camera=True, screen=True),
        by_user_id=teacher.pk,
    )
    participant = LessonParticipant.objects.get(lesson=lesson, user=pupil)
    assert (participant.mic_granted, participant.camera_granted, participant.screen_granted) == (
        False,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("target", "actor"),
    [("pupil_x", "pupil_x"), ("teacher_x", "teacher_x"), ("pupil_x", "teacher_y")],
    ids=["a pupil granting", "granting a teacher", "another class's teacher"],
)
def test_only_the_lessons_teacher_grants_and_only_to_its_pupils(campus, target, actor):
    with pytest.raises(LessonRecordError):
        records.grants_saved(
            lesson_id=campus.lesson_x.pk,
            user_id=campus.person(target).pk,
            grants=Grants(mic=True, camera=True, screen=True),
            by_user_id=campus.person(actor).pk,
        )
    assert not LessonParticipant.objects.exists()


def test_a_removal_is_kept_and_audited_once(campus, frozen_now):
    lesson, pupil, teacher = campus.lesson_x, campus.pupil_x, campus.teacher_x
    for _ in range(2):
        records.participant_removed(lesson_id=lesson.pk, user_id=pupil.pk, by_user_id=teacher.pk)
    participant = LessonParticipant.objects.get(lesson=lesson, user=pupil)
    assert participant.removed_at == frozen_now
    assert participant.removed_by == teacher
    # The school's starting policy: pupils start muted with their camera off.
    assert (participant.mic_granted, participant.camera_granted) == (False, False)
    [event] = audit(AuditAction.PARTICIPANT_REMOVED)
    assert event.actor == teacher
    assert event.school == campus.school_a
    assert event.details == {"user_id": pupil.pk, "lesson_key": lesson.key}
    assert event.target_label == "Pia Xavier · Fractions"


def test_readmitting_clears_the_removal_and_is_audited(campus):
    lesson, pupil, teacher = campus.lesson_x, campus.pupil_x, campus.teacher_x
    records.participant_removed(lesson_id=lesson.pk, user_id=pupil.pk, by_user_id=teacher.pk)
    records.participant_readmitted(lesson_id=lesson.pk, user_id=pupil.pk, by_user_id=teacher.pk)
    participant = LessonParticipant.objects.get(lesson=lesson, user=pupil)
    assert participant.removed_at is None
    assert participant.removed_by is None
    assert len(audit(AuditAction.PARTICIPANT_READMITTED)) == 1


def test_readmitting_someone_never_removed_records_nothing(campus):
    records.participant_readmitted(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, by_user_id=campus.teacher_x.pk
    )
    assert audit(AuditAction.PARTICIPANT_READMITTED) == []


@pytest.mark.parametrize(
    ("target", "actor"), [("teacher_x", "pupil_x"), ("teacher_x", "teacher_x")]
)
def test_a_pupil_cannot_remove_and_a_teacher_cannot_be_removed(campus, target, actor):
    with pytest.raises(LessonRecordError):
        records.participant_removed(
            lesson_id=campus.lesson_x.pk,
            user_id=campus.person(target).pk,
            by_user_id=campus.person(actor).pk,
        )
    assert audit(AuditAction.PARTICIPANT_REMOVED) == []


# --- Chat -----------------------------------------------------------------------------------------


def test_a_posted_message_comes_back_with_the_roster_name(campus, frozen_now):
    line = records.chat_posted(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, body="Page 12?"
    )
    stored = ChatMessage.objects.get()
    assert line == ChatLine(
        id=stored.pk,
        author_id=campus.pupil_x.pk,
        author_name="Pia Xavier",
        body="Page 12?",
        sent_at=frozen_now,
    )


@pytest.mark.parametrize("body", ["", "   ", "x" * 1001], ids=["empty", "blank", "too long"])
def test_an_empty_or_oversized_message_fails_loudly(campus, body):
    with pytest.raises(LessonRecordError, match="1 to 1000"):
        records.chat_posted(lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, body=body)
    assert not ChatMessage.objects.exists()


def test_a_message_of_1000_characters_is_kept(campus):
    line = records.chat_posted(
        lesson_id=campus.lesson_x.pk, user_id=campus.pupil_x.pk, body="é" * 1000
    )
    assert len(line.body) == 1000


def test_someone_off_the_roster_cannot_post(campus):
    with pytest.raises(LessonRecordError):
        records.chat_posted(lesson_id=campus.lesson_x.pk, user_id=campus.pupil_y.pk, body="hi")


def test_a_teacher_deletes_a_message_and_the_audit_keeps_what_it_said(campus, frozen_now):
    message = ChatMessageFactory.create(lesson=campus.lesson_x, author=campus.pupil_x, body="rude")
    deleted = records.chat_deleted(
        lesson_id=campus.lesson_x.pk, message_id=message.pk, by_user_id=campus.teacher_x.pk
    )
    assert deleted is True
    message.refresh_from_db()
    assert message.deleted_at == frozen_now
    assert message.deleted_by == campus.teacher_x
    [event] = audit(AuditAction.CHAT_DELETED)
    assert event.details["body"] == "rude"
    assert event.details["author_id"] == campus.pupil_x.pk


def test_deleting_a_message_twice_or_of_another_lesson_answers_false(campus):
    mine = ChatMessageFactory.create(lesson=campus.lesson_x, author=campus.pupil_x)
    theirs = ChatMessageFactory.create(lesson=campus.lesson_y, author=campus.pupil_y)
    lesson_id, teacher_id = campus.lesson_x.pk, campus.teacher_x.pk
    assert records.chat_deleted(lesson_id=lesson_id, message_id=mine.pk, by_user_id=teacher_id)
    assert not records.chat_deleted(lesson_id=lesson_id, message_id=mine.pk, by_user_id=teacher_id)
    assert not records.chat_deleted(
        lesson_id=lesson_id, message_id=theirs.pk, by_user_id=teacher_id
    )
    theirs.refresh_from_db()
    assert theirs.deleted_at is None
    assert len(audit(AuditAction.CHAT_DELETED)) == 1


def test_a_pupil_cannot_delete_a_message(campus):
    message = ChatMessageFactory.create(lesson=campus.lesson_x, author=campus.pupil_x)
    with pytest.raises(LessonRecordError):
        records.chat_deleted(
            lesson_id=campus.lesson_x.pk, message_id=message.pk, by_user_id=campus.pupil_x.pk
        )
    message.refresh_from_db()
    assert message.deleted_at is None


def test_the_history_is_the_latest_undeleted_messages_oldest_first(
    campus, frozen_now, django_assert_num_queries
):
    lesson = campus.lesson_x
    for minute in range(5):
        ChatMessageFactory.create(
            lesson=lesson,
            author=campus.pupil_x,
            body=f"m{minute}",
            sent_at=frozen_now + timedelta(minutes=minute),
            deleted_at=frozen_now if minute == 3 else None,
        )
    ChatMessageFactory.create(lesson=campus.lesson_y, author=campus.pupil_y, body="other")
    with django_assert_num_queries(1):
        history = records.chat_history(lesson_id=lesson.pk, limit=3)
    assert [line.body for line in history] == ["m1", "m2", "m4"]
    assert {line.author_name for line in history} == {"Pia Xavier"}


# --- The end --------------------------------------------------------------------------------------


def test_ending_a_lesson_closes_it_bumps_its_sequence_and_is_audited_once(campus):
    lesson = campus.lesson_x
    sequence = lesson.sequence
    for _ in range(2):
        records.lesson_ended(lesson_id=lesson.pk, by_user_id=campus.teacher_x.pk)
    lesson.refresh_from_db()
    assert lesson.state == LessonState.ENDED
    assert lesson.sequence == sequence + 1
    assert not lesson.is_joinable()
    [event] = audit(AuditAction.LESSON_ENDED)
    assert event.target_id == str(lesson.pk)
    assert event.actor == campus.teacher_x


def test_a_pupil_cannot_end_a_lesson(campus):
    with pytest.raises(LessonRecordError):
        records.lesson_ended(lesson_id=campus.lesson_x.pk, by_user_id=campus.pupil_x.pk)
    campus.lesson_x.refresh_from_db()
    assert campus.lesson_x.state == LessonState.SCHEDULED
