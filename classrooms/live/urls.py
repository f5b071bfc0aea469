"""URLs of the attendance pages. Included into the `classrooms` namespace without one of its own,
so the names read `classrooms:lesson_attendance`."""

from django.urls import path

from classrooms.live import views

urlpatterns = [
    path(
        "lessons/<str:lesson_key>/attendance/",
        views.lesson_attendance,
        name="lesson_attendance",
    ),
    path(
        "lessons/<str:lesson_key>/attendance.csv",
        views.lesson_attendance_csv,
        name="lesson_attendance_csv",
    ),
    path("classes/<int:class_id>/attendance/", views.class_attendance, name="class_attendance"),
]
