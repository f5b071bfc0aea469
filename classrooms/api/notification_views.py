"""Your notifications (the bell): list them, mark one or all read.

Reads and writes go through `classrooms.notifications`; another user's notification answers 404
like a missing one.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from classrooms.api import serializers
from classrooms.api.filters import choice_param
from classrooms.api.views import ScopedViewSet
from classrooms.models import Notification
from classrooms.notifications import selectors as notification_selectors
from classrooms.notifications import services as notification_services


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "unread",
                OpenApiTypes.STR,
                enum=["true", "false"],
                description="Only unread (true) or only read (false) notifications.",
            )
        ]
    )
)
class NotificationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ScopedViewSet[Notification],
):
    """Your own notifications, newest first."""

    queryset = Notification.objects.none()
    serializer_class = serializers.NotificationSerializer
    lookup_url_kwarg = "notification_id"
    lookup_value_regex = r"[0-9]+"

    def scoped_queryset(self, user: User) -> QuerySet[Notification]:
        notifications = notification_selectors.notifications_for_user(user=user).select_related(
            "lesson"
        )
        unread = choice_param(self.request.query_params, "unread", ["true", "false"])
        if unread is not None:
            notifications = notifications.filter(read_at__isnull=unread == "true")
        return notifications.order_by("-created_at", "-id")

    def get_object(self) -> Notification:
        return notification_selectors.access_notification_for_user(
            user=self.user, notification_id=int(self.kwargs["notification_id"])
        )

    @extend_schema(request=None, responses=serializers.NotificationSerializer)
    @action(detail=True, methods=["post"], url_path="read")
    def read(self, request: Request, notification_id: str) -> Response:
        """Mark one of your notifications read (again is harmless)."""
        notification = notification_services.notification_mark_read(
            user=self.user, notification_id=int(notification_id), now=timezone.now()
        )
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=serializers.MarkedReadSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark every unread notification of yours read."""
        marked = notification_services.notifications_mark_all_read(
            user=self.user, now=timezone.now()
        )
        return Response(serializers.MarkedReadSerializer({"marked": marked}).data)
