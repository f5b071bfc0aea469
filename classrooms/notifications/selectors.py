"""Permission-checked reads of notifications: a user reads only their own.

`access_notification_for_user` raises `NotFound` alike for a missing id and another user's, so
nobody can probe for other people's notifications.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import Membership, User
from classrooms.exceptions import NotFound
from classrooms.models import Notification

# How many notifications the bell's panel and the notifications page show.
RECENT = 50


def notifications_for_user(*, user: User) -> QuerySet[Notification]:
    """The user's notifications, newest first (the model's ordering)."""
    return Notification.objects.filter(user=user)


def recent_notifications(*, user: User, limit: int = RECENT) -> list[Notification]:
    return list(notifications_for_user(user=user)[:limit])


def unread_count(*, user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()


def access_notification_for_user(*, user: User, notification_id: int) -> Notification:
    try:
        return notifications_for_user(user=user).get(pk=notification_id)
    except Notification.DoesNotExist:
        raise NotFound from None


def header_memberships(*, user: User) -> QuerySet[Membership]:
    """The user's memberships for the page header's nav, each carrying the user's unread
    notification count (`unread_notifications`), so the bell costs no query of its own: the nav
    reads these rows anyway."""
    unread = (
        Notification.objects.filter(user_id=OuterRef("user_id"), read_at__isnull=True)
        .order_by()
        .values("user_id")
        .annotate(n=Count("pk", filter=Q(read_at__isnull=True)))
        .values("n")
    )
    return Membership.objects.filter(user=user).annotate(
        unread_notifications=Coalesce(Subquery(unread), 0)
    )
