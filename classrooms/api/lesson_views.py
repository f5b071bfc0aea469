"""Lessons and weekly series over the API: read by everyone on the class's roster (and the
school's admins), written by the class's teachers and the school's admins through the scheduling
services.

A write names its class by id and its lesson by key. A class id the user may not schedule answers
400 on that field, the same for a missing and a foreign class; a lesson or series key out of reach
answers 404. A clash with another lesson answers 409 with the service's message, which names that
lesson; any other rule the service enforces answers 400 keyed by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.settings import api_settings

from accounts.models import User
from classrooms import selectors
from classrooms.api import selectors as api_selectors
from classrooms.api import serializers
from classrooms.api.filters import choice_param, date_window, id_param
from classrooms.api.permissions import SchedulesOrReadOnly
from classrooms.api.views import ScopedViewSet
from classrooms.exceptions import NotFound
from classrooms.models import Lesson, LessonSeries, LessonState, SchoolClass
from classrooms.scheduling import services as scheduling
from classrooms.scheduling.exceptions import ScheduleClash
from classrooms.scheduling.selectors import (
    access_class_for_scheduling,
    access_lesson_for_scheduling,
    access_series_for_scheduling,
)

_T = TypeVar("_T")


class ScheduleConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This would overlap another lesson."
    default_code = "clash"


def run_service(service: Callable[..., _T], **kwargs: Any) -> _T:
    """Call a scheduling service, turning its refusals into API answers (409 or 400)."""
    try:
        return service(**kwargs)
    except ScheduleClash as clash:
        raise ScheduleConflict(detail=clash.messages[0]) from None
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            detail = {
                api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field: messages
                for field, messages in error.message_dict.items()
            }
        else:
            detail = {api_settings.NON_FIELD_ERRORS_KEY: error.messages}
        raise ValidationError(detail) from None


def validated(serializer_class: type[Serializer[Any]], request: Request, **kwargs: Any) -> Any:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def schedulable_class(*, user: User, class_id: int) -> SchoolClass:
    """The class named in a write's body; one answer for a missing, foreign or untaught class."""
    try:
        return access_class_for_scheduling(user=user, class_id=class_id)
    except NotFound:
        raise ValidationError(
            {"school_class": ["There is no class with this id that you may schedule."]}
        ) from None


CLASH = {409: serializers.ClashSerializer}

LESSON_LIST_PARAMETERS = [
    OpenApiParameter(
        "from",
        OpenApiTypes.STR,
        description="ISO 8601 date or date-time (naive means UTC); default: today, UTC.",
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.STR,
        description="Exclusive end; a date includes its whole day. Default: a week after "
        "`from`; at most 92 days after it.",
    ),
    OpenApiParameter("school_class", OpenApiTypes.INT, description="Only this class's lessons."),
    OpenApiParameter("state", OpenApiTypes.STR, enum=LessonState.values),
]


@extend_schema_view(
    list=extend_schema(parameters=LESSON_LIST_PARAMETERS),
    create=extend_schema(
        request=serializers.LessonCreateSerializer,
        responses={201: serializers.LessonSerializer, **CLASH},
    ),
    update=extend_schema(
        request=serializers.LessonUpdateSerializer,
        responses={200: serializers.LessonSerializer, **CLASH},
    ),
    partial_update=extend_schema(
        request=serializers.LessonUpdateSerializer,
        responses={200: serializers.LessonSerializer, **CLASH},
    ),
)
class LessonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet[Lesson]):
    """Lessons of the classes you may open, listed by date range and fetched by key; scheduled,
    moved, renamed and cancelled by the class's teachers and the school's admins."""

    queryset = Lesson.objects.none()
    serializer_class = serializers.LessonSerializer
    permission_classes = (IsAuthenticated, SchedulesOrReadOnly)
    lookup_field = "key"
    lookup_url_kwarg = "key"
    lookup_value_regex = r"[^/]+"

    def scoped_queryset(self, user: User) -> QuerySet[Lesson]:
        params = self.request.query_params
        start, end = date_window(params, now=timezone.now())
        lessons = selectors.lessons_for_user(user).overlapping(start, end).for_display()
        if (class_id := id_param(params, "school_class")) is not None:
            lessons = lessons.filter(school_class_id=class_id)
        if (state := choice_param(params, "state", LessonState.values)) is not None:
            lessons = lessons.filter(state=state)
        return lessons.order_by("starts_at", "id")

    def get_object(self) -> Lesson:
        return selectors.access_lesson_for_user(user=self.user, lesson_key=self.kwargs["key"])

    def _show(self, lesson: Lesson, status_code: int = status.HTTP_200_OK) -> Response:
        shown = selectors.access_lesson_for_user(user=self.user, lesson_key=lesson.key)
        return Response(self.get_serializer(shown).data, status=status_code)

    def create(self, request: Request) -> Response:
        """Schedule a one-off lesson of a class you may schedule."""
        data = validated(serializers.LessonCreateSerializer, request)
        school_class = schedulable_class(user=self.user, class_id=data["school_class"])
        lesson = run_service(
            scheduling.lesson_schedule,
            actor=self.user,
            school_class=school_class,
            title=data["title"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
        )
        return self._show(lesson, status.HTTP_201_CREATED)

    def update(self, request: Request, key: str, partial: bool = False) -> Response:
        """Move or rename a lesson still to come (PUT: all fields; PATCH: some)."""
        lesson = access_lesson_for_scheduling(user=self.user, lesson_key=key)
        data = validated(serializers.LessonUpdateSerializer, request, partial=partial)
        lesson = run_service(scheduling.lesson_update, actor=self.user, lesson=lesson, **data)
        return self._show(lesson)

    def partial_update(self, request: Request, key: str) -> Response:
        return self.update(request, key, partial=True)

    @extend_schema(request=None, responses={200: serializers.LessonSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, key: str) -> Response:
        """Call off a lesson still to come; it stays listed, in state `cancelled`."""
        lesson = access_lesson_for_scheduling(user=self.user, lesson_key=key)
        lesson = run_service(scheduling.lesson_cancel, actor=self.user, lesson=lesson)
        return self._show(lesson)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "school_class", OpenApiTypes.INT, description="Only this class's series."
            )
        ]
    ),
    create=extend_schema(
        request=serializers.SeriesCreateSerializer,
        responses={201: serializers.LessonSeriesSerializer, **CLASH},
    ),
)
class LessonSeriesViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet[LessonSeries]
):
    """Weekly lesson series of the classes you may open; created, changed from a day on and
    ended early by the class's teachers and the school's admins."""

    queryset = LessonSeries.objects.none()
    serializer_class = serializers.LessonSeriesSerializer
    permission_classes = (IsAuthenticated, SchedulesOrReadOnly)
    lookup_url_kwarg = "series_id"
    lookup_value_regex = r"[0-9]+"

    def scoped_queryset(self, user: User) -> QuerySet[LessonSeries]:
        series = api_selectors.series_for_user(user).select_related("school_class")
        if (class_id := id_param(self.request.query_params, "school_class")) is not None:
            series = series.filter(school_class_id=class_id)
        return series.order_by("school_class_id", "starts_on", "id")

    def _show(self, series: LessonSeries, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(series).data, status=status_code)

    def create(self, request: Request) -> Response:
        """Create a weekly series and all its lessons; a clash of any occurrence writes nothing."""
        data = validated(serializers.SeriesCreateSerializer, request)
        school_class = schedulable_class(user=self.user, class_id=data.pop("school_class"))
        series = run_service(
            scheduling.series_create, actor=self.user, school_class=school_class, **data
        )
        return self._show(series, status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.SeriesUpdateFromSerializer,
        responses={200: serializers.LessonSeriesSerializer, **CLASH},
    )
    @action(detail=True, methods=["post"], url_path="update-from")
    def update_from(self, request: Request, series_id: str) -> Response:
        """Change the series from a day on; answers the series that carries the new rule."""
        series = access_series_for_scheduling(user=self.user, series_id=int(series_id))
        data = validated(serializers.SeriesUpdateFromSerializer, request)
        series = run_service(scheduling.series_update_from, actor=self.user, series=series, **data)
        return self._show(series)

    @extend_schema(
        request=serializers.SeriesCancelFromSerializer,
        responses={200: serializers.SeriesCancelledSerializer},
    )
    @action(detail=True, methods=["post"], url_path="cancel-from")
    def cancel_from(self, request: Request, series_id: str) -> Response:
        """End the series early: cancel its lessons from a day on."""
        series = access_series_for_scheduling(user=self.user, series_id=int(series_id))
        data = validated(serializers.SeriesCancelFromSerializer, request)
        cancelled = run_service(
            scheduling.series_cancel_from, actor=self.user, series=series, **data
        )
        return Response(serializers.SeriesCancelledSerializer({"cancelled": cancelled}).data)
