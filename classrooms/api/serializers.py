"""How the API shows the school's rows, and the shapes of the writes it accepts.

Lessons are named by their public key, never by their integer id; other rows use their id. Times
go out in ISO 8601 UTC; each lesson carries its school's time zone for display.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from classrooms.models import (
    WEEKDAYS,
    Course,
    Enrollment,
    EnrollmentRole,
    Lesson,
    LessonSeries,
    Notification,
    School,
    SchoolClass,
    Term,
)


class SchoolSerializer(serializers.ModelSerializer[School]):
    roles = serializers.SerializerMethodField(help_text="The roles you hold in this school.")

    class Meta:
        model = School
        fields = ("id", "name", "slug", "time_zone", "roles")

    def get_roles(self, school: School) -> list[str]:
        roles: dict[int, frozenset[str]] = self.context["roles"]
        return sorted(roles.get(school.pk, ()))


class TermSerializer(serializers.ModelSerializer[Term]):
    class Meta:
        model = Term
        fields = ("id", "school", "name", "starts_on", "ends_on")


class CourseSerializer(serializers.ModelSerializer[Course]):
    class Meta:
        model = Course
        fields = ("id", "school", "title", "code", "color")


class TermRefSerializer(serializers.ModelSerializer[Term]):
    class Meta:
        model = Term
        fields = ("id", "name")


class CourseRefSerializer(serializers.ModelSerializer[Course]):
    class Meta:
        model = Course
        fields = ("id", "title", "code", "color")


class ClassRefSerializer(serializers.ModelSerializer[SchoolClass]):
    class Meta:
        model = SchoolClass
        fields = ("id", "name")


class SchoolClassSerializer(serializers.ModelSerializer[SchoolClass]):
    term = TermRefSerializer(read_only=True)
    course = CourseRefSerializer(read_only=True)

    class Meta:
        model = SchoolClass
        fields = ("id", "school", "name", "term", "course", "archived_at")


class PersonSerializer(serializers.ModelSerializer[User]):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = User
        fields = ("id", "name")


class EnrollmentSerializer(serializers.ModelSerializer[Enrollment]):
    school_class = serializers.IntegerField(source="school_class_id", read_only=True)
    user = PersonSerializer(read_only=True)

    class Meta:
        model = Enrollment
        fields = ("id", "school", "school_class", "role", "user")


class LessonSerializer(serializers.ModelSerializer[Lesson]):
    school_class = ClassRefSerializer(read_only=True)
    course = CourseRefSerializer(source="school_class.course", read_only=True)
    time_zone = serializers.CharField(
        source="school.time_zone", read_only=True, help_text="The school's IANA time zone."
    )
    joinable = serializers.SerializerMethodField(
        help_text="The Join button is live: from a few minutes before the start to the end."
    )
    join_url = serializers.SerializerMethodField()
    series = serializers.IntegerField(source="series_id", read_only=True, allow_null=True)

    class Meta:
        model = Lesson
        fields: tuple[str, ...] = (
            "key",
            "title",
            "school",
            "school_class",
            "course",
            "starts_at",
            "ends_at",
            "time_zone",
            "state",
            "joinable",
            "join_url",
            "series",
            "is_exception",
        )
        read_only_fields: tuple[str, ...] = fields

    def get_joinable(self, lesson: Lesson) -> bool:
        now: datetime = self.context["now"]
        return lesson.is_joinable(now)

    @extend_schema_field(OpenApiTypes.URI)
    def get_join_url(self, lesson: Lesson) -> str:
        path = reverse("classrooms:lesson", kwargs={"lesson_key": lesson.key})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class TimetableLessonSerializer(LessonSerializer):
    # Named `role` like the enrollment's field, so the schema holds one enum for the two.
    role = serializers.ChoiceField(
        source="roster_role",
        choices=EnrollmentRole.choices,
        read_only=True,
        help_text="Your place on the class's roster.",
    )

    class Meta(LessonSerializer.Meta):
        fields = (*LessonSerializer.Meta.fields, "role")
        read_only_fields = fields


class LessonSeriesSerializer(serializers.ModelSerializer[LessonSeries]):
    school_class = ClassRefSerializer(read_only=True)
    weekdays = serializers.ListField(
        source="weekday_codes", child=serializers.ChoiceField(choices=WEEKDAYS), read_only=True
    )

    class Meta:
        model = LessonSeries
        fields = (
            "id",
            "school",
            "school_class",
            "title",
            "weekdays",
            "start_time",
            "duration_minutes",
            "starts_on",
            "ends_on",
        )
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    lesson = serializers.SlugRelatedField[Lesson](slug_field="key", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = ("id", "school", "kind", "title", "body", "url", "lesson", "created_at", "read_at")
        read_only_fields = fields


class MarkedReadSerializer(serializers.Serializer[dict[str, Any]]):
    marked = serializers.IntegerField(help_text="How many notifications were marked read.")


# --- Writes ---------------------------------------------------------------------------------------
# Inputs only: the views hand the validated values to the scheduling services, which hold the
# rules (term bounds, durations, clashes) and answer with the row to show.


class LessonCreateSerializer(serializers.Serializer[dict[str, Any]]):
    school_class = serializers.IntegerField(
        min_value=1, help_text="Id of a class you teach, or of a class of a school you run."
    )
    title = serializers.CharField(max_length=200)
    starts_at = serializers.DateTimeField(help_text="ISO 8601; naive means UTC.")
    ends_at = serializers.DateTimeField(help_text="ISO 8601; naive means UTC.")


class LessonUpdateSerializer(serializers.Serializer[dict[str, Any]]):
    """PUT names all three; PATCH any of them (a new start alone keeps the lesson's length)."""

    title = serializers.CharField(max_length=200)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class SeriesCreateSerializer(serializers.Serializer[dict[str, Any]]):
    school_class = serializers.IntegerField(
        min_value=1, help_text="Id of a class you teach, or of a class of a school you run."
    )
    title = serializers.CharField(max_length=200)
    weekdays = serializers.ListField(
        child=serializers.ChoiceField(choices=WEEKDAYS), min_length=1, max_length=7
    )
    start_time = serializers.TimeField(help_text="Local time in the school's time zone.")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=1440)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(
        required=False, help_text="Last day; by default the last day of the class's term."
    )


class SeriesUpdateFromSerializer(serializers.Serializer[dict[str, Any]]):
    from_date = serializers.DateField(
        help_text="The first day the new rule applies (today or later)."
    )
    title = serializers.CharField(max_length=200, required=False)
    weekdays = serializers.ListField(
        child=serializers.ChoiceField(choices=WEEKDAYS), min_length=1, max_length=7, required=False
    )
    start_time = serializers.TimeField(required=False)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=1440, required=False)
    ends_on = serializers.DateField(required=False)


class SeriesCancelFromSerializer(serializers.Serializer[dict[str, Any]]):
    from_date = serializers.DateField(help_text="The first day whose lesson is called off.")


class SeriesCancelledSerializer(serializers.Serializer[dict[str, Any]]):
    cancelled = serializers.IntegerField(help_text="How many lessons were cancelled.")


class ClashSerializer(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField(help_text="Names the lesson this one would overlap.")
    code = serializers.CharField()
