"""Routes of the school admin's roster exchange pages (see roster_views)."""

from django.urls import path

from classrooms import roster_views

urlpatterns = [
    path("school/<int:school_id>/roster/", roster_views.roster_index, name="roster"),
    path("school/<int:school_id>/roster/upload/", roster_views.roster_upload, name="roster-upload"),
    path("school/<int:school_id>/roster/export/", roster_views.roster_export, name="roster-export"),
    path(
        "school/<int:school_id>/roster/imports/<int:import_id>/",
        roster_views.roster_import_detail,
        name="roster-import",
    ),
    path(
        "school/<int:school_id>/roster/imports/<int:import_id>/status/",
        roster_views.roster_import_status,
        name="roster-import-status",
    ),
    path(
        "school/<int:school_id>/roster/imports/<int:import_id>/apply/",
        roster_views.roster_import_apply,
        name="roster-import-apply",
    ),
]
