"""Writes with consequences for notifications: lesson reminders, cancel/move notices, marking read.

Delivery happens in two steps so that it is idempotent in the database, whatever the number of
workers and however they die:

1. **Insert**: one row per person and event, `bulk_create(ignore_conflicts=True)` on the unique
   (user, dedupe_key) constraint. Two scans at once insert each row once; a scan run again inserts
   nothing new.
2. **Deliver**: every row with `emailed_at` null is claimed by a conditional UPDATE
   (`emailed_at IS NULL` → now; exactly one worker sees one row updated) in a short transaction
   that also sends the email, so a failed send rolls the claim back and a later scan retries it.
   The live push to the bell is registered on that transaction's commit, so the worker that owns
   the row is the only one that announces it. A worker that died after step 1 leaves rows with
   `emailed_at` null, which the next scan delivers.

On PostgreSQL the claim's row lock makes a concurrent claimer wait for the first one's commit,
then find nothing to update; on SQLite the write lock serialises the claims. Email is therefore
at-least-once only in the narrow window between a successful send and its commit.

A reminder's dedupe key is `reminder:<lesson id>:<UTC start>`: a lesson moved to another time is
reminded again at its new time, while an edit that keeps the time (a new title) reminds nobody
twice. A notice's key is `<kind>:<lesson id>:<lesson sequence>`, one per change of the lesson.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, User
from classrooms.models import (
    Enrollment,
    Lesson,
    LessonState,
    Notification,
    NotificationKind,
    School,
)
from classrooms.notifications import selectors

logger = logging.getLogger(__name__)

# Unsent rows older than this are history, not news: a scan does not email them any more.
DELIVERY_WINDOW = timedelta(days=1)
# States in which a lesson still happens, so its reminder is worth sending.
REMINDABLE_STATES = (LessonState.SCHEDULED, LessonState.LIVE)
NOTICE_KINDS = (NotificationKind.CANCELLED, NotificationKind.MOVED)


def group_for_user(user_id: int) -> str:
    """The channel-layer group of one user's open bells (every tab, every device)."""
    return f"notifications.user.{user_id}"


def reminder_key(lesson: Lesson) -> str:
    return f"reminder:{lesson.pk}:{lesson.starts_at.astimezone(UTC):%Y%m%dT%H%MZ}"


def notice_key(lesson: Lesson, kind: str) -> str:
    return f"{kind}:{lesson.pk}:{lesson.sequence}"


# --- Step 1: insert -------------------------------------------------------------------------------


def lessons_due_for_reminder(*, now: datetime) -> list[Lesson]:
    """Lessons that still happen and start within their school's lead time, not yet started.

    A reminder may go out until the lesson's start: after that the Join button and the live
    lesson speak for themselves. One query per distinct lead time among schools (a handful).
    """
    lessons: list[Lesson] = []
    leads = School.objects.order_by().values_list("reminder_lead_minutes", flat=True).distinct()
    for lead in leads:
        lessons.extend(
            Lesson.objects.filter(
                school__reminder_lead_minutes=lead,
                state__in=REMINDABLE_STATES,
                starts_at__gt=now,
                starts_at__lte=now + timedelta(minutes=lead),
            ).select_related("school", "school_class")
        )
    return lessons


def _rosters(lessons: Iterable[Lesson]) -> dict[int, list[int]]:
    """Ids of each class's teachers and pupils who are active users with an active membership
    in the class's school: one query for all the classes."""
    class_ids = {lesson.school_class_id for lesson in lessons}
    if not class_ids:
        return {}
    member = Membership.objects.active().filter(
        school_id=OuterRef("school_id"), user_id=OuterRef("user_id")
    )
    rows = (
        Enrollment.objects.filter(school_class_id__in=class_ids, user__is_active=True)
        .filter(Exists(member))
        .order_by()
        .values_list("school_class_id", "user_id")
    )
    roster: dict[int, list[int]] = defaultdict(list)
    for class_id, user_id in rows:
        roster[class_id].append(user_id)
    return roster


def _local(lesson: Lesson) -> str:
    """'Wednesday 12 March, 10:35 to 11:30' (with an en dash, and the zone): the lesson in its
    school's time."""
    zone = lesson.school.tzinfo
    start = timezone.localtime(lesson.starts_at, zone)
    end = timezone.localtime(lesson.ends_at, zone)
    day = formats.date_format(start, "l j F")
    return f"{day}, {start:%H:%M}\N{EN DASH}{end:%H:%M} ({lesson.school.time_zone})"


def _content(lesson: Lesson, kind: str) -> tuple[str, str]:
    start = timezone.localtime(lesson.starts_at, lesson.school.tzinfo)
    when = _local(lesson)
    name = lesson.school_class.name
    if kind == NotificationKind.REMINDER:
        title = _("%(title)s starts at %(time)s") % {
            "title": lesson.title,
            "time": f"{start:%H:%M}",
        }
        body = _("%(class)s · %(when)s") % {"class": name, "when": when}
    elif kind == NotificationKind.CANCELLED:
        title = _("Cancelled: %(title)s") % {"title": lesson.title}
        body = _("%(class)s · %(when)s will not take place.") % {"class": name, "when": when}
    else:
        title = _("Moved: %(title)s") % {"title": lesson.title}
        body = _("%(class)s · now %(when)s") % {"class": name, "when": when}
    return title[:200], body


def _insert(lesson: Lesson, kind: str, dedupe_key: str, user_ids: Iterable[int]) -> None:
    title, body = _content(lesson, kind)
    url = reverse("classrooms:lesson", args=[lesson.key])
    Notification.objects.bulk_create(
        [
            Notification(
                school_id=lesson.school_id,
                user_id=user_id,
                lesson=lesson,
                kind=kind,
                dedupe_key=dedupe_key,
                title=title,
                body=body,
                url=url,
            )
            for user_id in user_ids
        ],
        ignore_conflicts=True,
    )


@transaction.atomic
def reminders_create(*, now: datetime) -> list[Lesson]:
    """Step 1 of `reminders_send`: insert the reminder rows of every lesson now due (idempotent).

    Returns the lessons it considered.
    """
    lessons = lessons_due_for_reminder(now=now)
    rosters = _rosters(lessons)
    for lesson in lessons:
        _insert(
            lesson, NotificationKind.REMINDER, reminder_key(lesson), rosters[lesson.school_class_id]
        )
    return lessons


# --- Step 2: deliver ------------------------------------------------------------------------------


def _still_news(notification: Notification, now: datetime) -> bool:
    """A reminder is worth delivering only while it describes the lesson as it is and before its
    start; a cancelled lesson's pending reminder is never sent."""
    if notification.kind != NotificationKind.REMINDER:
        return True
    lesson = notification.lesson
    return (
        lesson is not None
        and lesson.state in REMINDABLE_STATES
        and lesson.starts_at > now
        and notification.dedupe_key == reminder_key(lesson)
    )


def _email(notification: Notification, connection: BaseEmailBackend) -> None:
    link = f"{settings.HOMEROOM_SITE_URL}{notification.url}" if notification.url else ""
    send_mail(
        subject=notification.title,
        message="\n\n".join(part for part in (notification.body, link) if part),
        from_email=None,
        recipient_list=[notification.user.email],
        connection=connection,
    )


def _claim_and_deliver(
    notification: Notification, *, now: datetime, connection: BaseEmailBackend
) -> bool:
    """Claim one row (emailed_at: NULL → now) and email it, in one transaction; push on commit."""
    with transaction.atomic():
        claimed = Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
            emailed_at=now
        )
        if claimed != 1:
            return False
        _email(notification, connection)
        transaction.on_commit(lambda: push_created(notification))
    return True


def notifications_deliver(*, now: datetime, dedupe_key: str | None = None) -> int:
    """Step 2: email and push every undelivered recent row (or those of one event); return how
    many this call delivered. Each row in its own short transaction; a failing email is logged
    and left for the next scan."""
    pending = (
        Notification.objects.filter(emailed_at__isnull=True, created_at__gte=now - DELIVERY_WINDOW)
        .select_related("user", "lesson", "lesson__school")
        .order_by("created_at", "id")
    )
    if dedupe_key is not None:
        pending = pending.filter(dedupe_key=dedupe_key)
    delivered = 0
    connection = get_connection(fail_silently=False)
    for notification in pending:
        if not _still_news(notification, now):
            continue
        try:
            delivered += _claim_and_deliver(notification, now=now, connection=connection)
        except Exception:
            logger.exception(
                "notification %s: delivery failed; a later scan retries", notification.pk
            )
    return delivered


def reminders_send(*, now: datetime) -> int:
    """Periodic (beat, every minute): remind each rostered teacher and pupil of a lesson starting
    within their school's lead time, once; return how many reminders this run delivered.

    Not one transaction on purpose: the insert commits first, then each delivery commits on its
    own, so a crash loses nothing and repeats nothing (see the module's docstring). The sweep also
    delivers what a dead worker left behind, notices included.
    """
    reminders_create(now=now)
    return notifications_deliver(now=now)


def lesson_change_notify(*, lesson_id: int, kind: str) -> int:
    """Tell a lesson's roster it was cancelled or moved (queued by scheduling after the change
    committed); return how many people this call told. Replaces the reminder: a cancelled lesson
    is never reminded (the scan skips it, and a pending reminder is dropped at delivery); a moved
    one is reminded again at its new time.

    Stale or repeated tasks are harmless: a "cancelled" notice for a lesson no longer cancelled,
    a notice for a lesson already over or gone, and a second run for the same change do nothing.
    """
    if kind not in NOTICE_KINDS:
        raise ValueError(f"not a lesson change: {kind!r}")
    now = timezone.now()
    lesson = Lesson.objects.select_related("school", "school_class").filter(pk=lesson_id).first()
    if lesson is None or lesson.ends_at <= now:
        return 0
    if (kind == NotificationKind.CANCELLED) != (lesson.state == LessonState.CANCELLED):
        return 0
    if lesson.state == LessonState.ENDED:
        return 0
    key = notice_key(lesson, kind)
    with transaction.atomic():
        _insert(lesson, kind, key, _rosters([lesson])[lesson.school_class_id])
    return notifications_deliver(now=now, dedupe_key=key)


# --- Reading --------------------------------------------------------------------------------------


@transaction.atomic
def notification_mark_read(*, user: User, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's notifications read (a foreign or missing id raises NotFound)."""
    notification = selectors.access_notification_for_user(
        user=user, notification_id=notification_id
    )
    if notification.read_at is None:
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
        transaction.on_commit(lambda: push_unread(user.pk))
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user: User, now: datetime) -> int:
    """Mark every unread notification of the user read; return how many."""
    count = Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=now)
    if count:
        transaction.on_commit(lambda: push_unread(user.pk))
    return count


# --- Live push ------------------------------------------------------------------------------------


def _group_send(user_id: int, message: dict[str, object]) -> None:
    """Best effort: a bell that misses a push catches up on the next page load."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group_for_user(user_id), message)
    except Exception:
        logger.exception("notifications: push to user %s failed", user_id)


def push_created(notification: Notification) -> None:
    _group_send(
        notification.user_id,
        {
            "type": "notification.created",
            "unread": selectors.unread_count(user_id=notification.user_id),
            "notification": {
                "id": notification.pk,
                "kind": notification.kind,
                "title": notification.title,
                "body": notification.body,
                "url": notification.url,
                "created_at": notification.created_at.isoformat(),
            },
        },
    )


def push_unread(user_id: int) -> None:
    _group_send(
        user_id,
        {"type": "notification.unread", "unread": selectors.unread_count(user_id=user_id)},
    )
