"""What the page header needs on every page: the nav's memberships and the bell's unread count.

Both come from one query, made only when a template reads them (pages without the header, and
anonymous visitors, cost nothing).
"""

from __future__ import annotations

from functools import cached_property

from django.http import HttpRequest

from accounts.models import Membership, User
from classrooms.notifications import selectors


class Header:
    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    @cached_property
    def memberships(self) -> list[Membership]:
        user = getattr(self._request, "user", None)
        if not isinstance(user, User):
            return []
        return list(selectors.header_memberships(user=user))

    @cached_property
    def unread(self) -> int:
        """The unread count rides on every membership row; a user with no membership has no
        school, hence no notifications."""
        return next(
            (getattr(m, "unread_notifications", 0) for m in self.memberships),
            0,
        )


def header(request: HttpRequest) -> dict[str, Header]:
    return {"header": Header(request)}
