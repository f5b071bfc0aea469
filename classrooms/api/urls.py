"""`/api/v1/`: one router for the resources, plus the user's own timetable."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from classrooms.api import lesson_views, notification_views, views

app_name = "api"

router = SimpleRouter()
router.register("schools", views.SchoolViewSet, basename="school")
router.register("terms", views.TermViewSet, basename="term")
router.register("courses", views.CourseViewSet, basename="course")
router.register("classes", views.SchoolClassViewSet, basename="class")
router.register("enrollments", views.EnrollmentViewSet, basename="enrollment")
router.register("lessons", lesson_views.LessonViewSet, basename="lesson")
router.register("series", lesson_views.LessonSeriesViewSet, basename="series")
router.register("notifications", notification_views.NotificationViewSet, basename="notification")

urlpatterns = [
    path("me/timetable/", views.TimetableView.as_view(), name="timetable"),
    *router.urls,
]
