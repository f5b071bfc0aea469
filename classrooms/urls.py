from django.urls import include, path

from classrooms import views

app_name = "classrooms"

urlpatterns = [
    path("", views.home, name="home"),
    path("classes/<int:class_id>/", views.class_detail, name="class"),
    path("lessons/<str:lesson_key>/", views.lesson_detail, name="lesson"),
    path("", include("classrooms.school_admin.urls")),
    path("", include("classrooms.roster_urls")),
    path("", include("classrooms.scheduling.urls")),
    path("", include("classrooms.notifications.urls")),
    path("", include("classrooms.timetable.urls")),
    path("", include("classrooms.live.urls")),
]
