"""Writes behind the calendar feed: give a user a feed, and replace its secret token.

The token is the feed's only protection (calendar apps poll it without logging in), so it is 32
random bytes, URL-safe, and replacing it is the way to shut out anyone the old URL leaked to.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import CalendarFeed, User

TOKEN_BYTES = 32


def new_feed_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def calendar_feed_ensure(*, user: User) -> CalendarFeed:
    """The user's feed, made on first need (the week page shows its URL).

    Idempotent: two first visits at once end with one feed, since the user is unique on the table
    and `get_or_create` reads the winner's row after losing the insert.
    """
    feed, _created = CalendarFeed.objects.get_or_create(
        user=user, defaults={"token": new_feed_token()}
    )
    return feed


@transaction.atomic
def calendar_feed_renew(*, user: User) -> CalendarFeed:
    """Give the user's feed a new token; the old URL answers 404 from now on.

    The row is kept (and locked while it changes), so there is still exactly one feed per user.
    """
    feed, created = CalendarFeed.objects.select_for_update().get_or_create(
        user=user, defaults={"token": new_feed_token()}
    )
    if not created:
        feed.token = new_feed_token()
        feed.created_at = timezone.now()
        feed.save(update_fields=["token", "created_at"])
    return feed
