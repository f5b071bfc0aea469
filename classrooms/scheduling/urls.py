"""URLs of the scheduling pages: a class's schedule, its new lessons and series, and the changes
to one lesson or to a series."""

from django.urls import path

from classrooms.scheduling import views

app_name = "scheduling"

CLASS = "classes/<int:class_id>/schedule/"

urlpatterns = [
    path(CLASS, views.class_schedule, name="class_schedule"),
    path(f"{CLASS}lessons/new/", views.lesson_create, name="lesson_create"),
    path(f"{CLASS}series/new/", views.series_create, name="series_create"),
    path("schedule/lessons/<str:lesson_key>/edit/", views.lesson_edit, name="lesson_edit"),
    path("schedule/lessons/<str:lesson_key>/cancel/", views.lesson_cancel, name="lesson_cancel"),
    path("schedule/series/<int:series_id>/edit/", views.series_edit, name="series_edit"),
    path("schedule/series/<int:series_id>/cancel/", views.series_cancel, name="series_cancel"),
]
