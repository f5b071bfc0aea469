"""Who may call the API's writes at all.

Permissions here answer only "may this user write timetables anywhere"; which class or lesson they
may touch is the scheduling selectors' question, and those answer 404 for anything out of reach.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import Role, User
from classrooms.selectors import roles_by_school

SCHEDULING_ROLES = frozenset({Role.ADMIN, Role.TEACHER})


def holds_scheduling_role(user: User) -> bool:
    """Is the user a teacher or a school admin in at least one school (one query)?"""
    return any(roles & SCHEDULING_ROLES for roles in roles_by_school(user).values())


class SchedulesOrReadOnly(BasePermission):
    """Reads for every signed-in user; writes only for teachers and school admins.

    A pupil or guardian who tries to write gets 403 (they may never write, whatever the row); a
    teacher who names a class or lesson they do not teach gets 404 from the selectors instead.
    """

    message = "Only teachers and school admins may change the timetable."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if request.method not in view.allowed_methods:
            # Let the view answer 405, the same to everyone, rather than 403 to some.
            return True
        user = request.user
        return isinstance(user, User) and holds_scheduling_role(user)
