"""The API's read-only views: schools, terms, courses, classes, enrollments and "my timetable",
and the base every API view shares.

Each view takes its queryset from a selector scoped to the requesting user and only narrows it
with the query string; a detail outside that queryset answers 404 like a missing row. Lessons and
series (read and write) are in `lesson_views`, notifications in `notification_views`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, viewsets
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from classrooms import selectors
from classrooms.api import selectors as api_selectors
from classrooms.api import serializers
from classrooms.api.filters import choice_param, id_param, week_monday
from classrooms.api.pagination import ApiPagination
from classrooms.models import (
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    School,
    SchoolClass,
    Term,
)

_M = TypeVar("_M", bound=Model)

# Token first: DRF answers an unauthenticated request with the first class's challenge, and only
# the token scheme has one, so a request without credentials gets 401 `WWW-Authenticate: Token`
# rather than a bare 403.
AUTHENTICATION: tuple[type[BaseAuthentication], ...] = (
    TokenAuthentication,
    SessionAuthentication,
)


def request_user(request: Request) -> User:
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated
    return user


class ScopedAPIView(generics.GenericAPIView[_M]):
    """A view whose rows come from the hook `scoped_queryset(user)`.

    Schema generation runs views with no user: it gets the class's empty `queryset` instead.
    """

    authentication_classes = AUTHENTICATION
    pagination_class = ApiPagination

    @property
    def user(self) -> User:
        return request_user(self.request)

    def get_queryset(self) -> QuerySet[_M]:
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset()
        return self.scoped_queryset(self.user)

    def scoped_queryset(self, user: User) -> QuerySet[_M]:
        raise NotImplementedError

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        context["now"] = timezone.now()
        return context


class ScopedViewSet(viewsets.ViewSetMixin, ScopedAPIView[_M]):
    """A `ScopedAPIView` routed as a viewset: actions come from the mixins each one adds."""


class ReadOnlyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet[_M]):
    lookup_value_regex = r"[0-9]+"


def _id_filter(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, description=f"Only rows of this {what}.")


class SchoolViewSet(ReadOnlyViewSet[School]):
    """The schools you belong to, with the roles you hold in each."""

    queryset = School.objects.none()
    serializer_class = serializers.SchoolSerializer
    lookup_url_kwarg = "school_id"

    def scoped_queryset(self, user: User) -> QuerySet[School]:
        return selectors.schools_for_user(user).order_by("name", "id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["roles"] = (
            {}
            if getattr(self, "swagger_fake_view", False)
            else selectors.roles_by_school(self.user)
        )
        return context


@extend_schema_view(list=extend_schema(parameters=[_id_filter("school", "school")]))
class TermViewSet(ReadOnlyViewSet[Term]):
    """Terms (academic sessions) of your schools."""

    queryset = Term.objects.none()
    serializer_class = serializers.TermSerializer
    lookup_url_kwarg = "term_id"

    def scoped_queryset(self, user: User) -> QuerySet[Term]:
        terms = api_selectors.terms_for_user(user)
        if (school_id := id_param(self.request.query_params, "school")) is not None:
            terms = terms.filter(school_id=school_id)
        return terms.order_by("school_id", "starts_on", "id")


@extend_schema_view(list=extend_schema(parameters=[_id_filter("school", "school")]))
class CourseViewSet(ReadOnlyViewSet[Course]):
    """Courses (subjects) of your schools."""

    queryset = Course.objects.none()
    serializer_class = serializers.CourseSerializer
    lookup_url_kwarg = "course_id"

    def scoped_queryset(self, user: User) -> QuerySet[Course]:
        courses = api_selectors.courses_for_user(user)
        if (school_id := id_param(self.request.query_params, "school")) is not None:
            courses = courses.filter(school_id=school_id)
        return courses.order_by("school_id", "title", "id")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _id_filter("school", "school"),
            _id_filter("term", "term"),
            _id_filter("course", "course"),
        ]
    )
)
class SchoolClassViewSet(ReadOnlyViewSet[SchoolClass]):
    """Classes you may open: all classes of a school you run, else the classes you are on."""

    queryset = SchoolClass.objects.none()
    serializer_class = serializers.SchoolClassSerializer
    lookup_url_kwarg = "class_id"

    def scoped_queryset(self, user: User) -> QuerySet[SchoolClass]:
        classes = selectors.classes_for_user(user).select_related("term", "course")
        params = self.request.query_params
        for name in ("school", "term", "course"):
            if (value := id_param(params, name)) is not None:
                classes = classes.filter(**{f"{name}_id": value})
        return classes.order_by("name", "id")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _id_filter("school_class", "class"),
            OpenApiParameter("role", OpenApiTypes.STR, enum=EnrollmentRole.values),
        ]
    )
)
class EnrollmentViewSet(ReadOnlyViewSet[Enrollment]):
    """Class rosters: whole rosters for a class's teachers and the school's admins, your own
    enrollments otherwise."""

    queryset = Enrollment.objects.none()
    serializer_class = serializers.EnrollmentSerializer
    lookup_url_kwarg = "enrollment_id"

    def scoped_queryset(self, user: User) -> QuerySet[Enrollment]:
        enrollments = api_selectors.enrollments_for_user(user).select_related("user")
        params = self.request.query_params
        if (class_id := id_param(params, "school_class")) is not None:
            enrollments = enrollments.filter(school_class_id=class_id)
        if (role := choice_param(params, "role", EnrollmentRole.values)) is not None:
            enrollments = enrollments.filter(role=role)
        return enrollments.order_by(
            "school_class_id", "-role", "user__family_name", "user__given_name", "id"
        )


@extend_schema(
    parameters=[
        OpenApiParameter(
            "week",
            OpenApiTypes.DATE,
            description="Any day of the week wanted (default: this week); weeks start on Monday "
            "midnight in each school's time zone.",
        )
    ]
)
class TimetableView(mixins.ListModelMixin, ScopedAPIView[Lesson]):
    """Your lessons of one week, as a pupil or teacher of the class, with join links."""

    queryset = Lesson.objects.none()
    serializer_class = serializers.TimetableLessonSerializer

    def scoped_queryset(self, user: User) -> QuerySet[Lesson]:
        monday = week_monday(self.request.query_params, now=timezone.now())
        return api_selectors.timetable_for_user(user=user, monday=monday)

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)
