from django.urls import path

from classrooms.notifications import views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.notification_list, name="list"),
    path("notifications/panel/", views.notification_panel, name="panel"),
    path("notifications/read-all/", views.notifications_read_all, name="read_all"),
    path("notifications/<int:notification_id>/open/", views.notification_open, name="open"),
]
