"""URLs of the timetable: the week pages, the admin's day view and the calendar feed."""

from django.urls import path

from classrooms.timetable import views

app_name = "timetable"

urlpatterns = [
    path("week/", views.my_week, name="week"),
    path("week/calendar/new-link/", views.feed_renew, name="feed_renew"),
    path("classes/<int:class_id>/week/", views.class_week, name="class_week"),
    path("school/<int:school_id>/day/", views.school_day, name="school_day"),
    path("calendar/<str:token>.ics", views.calendar_feed, name="feed"),
]
