"""URLs of school administration: the admin's pages under `/school/<school id>/`, the invitation
link, and the guardians' view of their children's week."""

from django.urls import path

from classrooms.school_admin import class_views, public_views, views

app_name = "school_admin"

SCHOOL = "school/<int:school_id>/"

urlpatterns = [
    path("school/", views.schools, name="schools"),
    path(SCHOOL, views.dashboard, name="dashboard"),
    # People
    path(f"{SCHOOL}people/", views.people, name="people"),
    path(f"{SCHOOL}people/new/", views.person_create, name="person_create"),
    path(f"{SCHOOL}people/invite-missing/", views.invite_missing, name="invite_missing"),
    path(f"{SCHOOL}people/<int:user_id>/", views.person_detail, name="person"),
    path(f"{SCHOOL}people/<int:user_id>/edit/", views.person_edit, name="person_edit"),
    path(
        f"{SCHOOL}people/<int:user_id>/deactivate/",
        views.person_deactivate,
        name="person_deactivate",
    ),
    path(
        f"{SCHOOL}people/<int:user_id>/reactivate/",
        views.person_reactivate,
        name="person_reactivate",
    ),
    path(f"{SCHOOL}people/<int:user_id>/invite/", views.person_invite, name="person_invite"),
    path(f"{SCHOOL}people/<int:user_id>/wards/", views.guardian_link, name="guardian_link"),
    path(
        f"{SCHOOL}people/<int:user_id>/wards/<int:pupil_id>/remove/",
        views.guardian_unlink,
        name="guardian_unlink",
    ),
    # Classes
    path(f"{SCHOOL}classes/", class_views.classes, name="classes"),
    path(f"{SCHOOL}classes/new/", class_views.class_create, name="class_create"),
    path(f"{SCHOOL}classes/<int:class_id>/", class_views.class_detail, name="class"),
    path(f"{SCHOOL}classes/<int:class_id>/edit/", class_views.class_edit, name="class_edit"),
    path(
        f"{SCHOOL}classes/<int:class_id>/archive/", class_views.class_archive, name="class_archive"
    ),
    path(
        f"{SCHOOL}classes/<int:class_id>/restore/", class_views.class_restore, name="class_restore"
    ),
    path(
        f"{SCHOOL}classes/<int:class_id>/pupils/add/",
        class_views.class_enrol_pupils,
        name="class_enrol_pupils",
    ),
    path(
        f"{SCHOOL}classes/<int:class_id>/teachers/add/",
        class_views.class_assign_teachers,
        name="class_assign_teachers",
    ),
    path(
        f"{SCHOOL}classes/<int:class_id>/remove/", class_views.class_unenrol, name="class_unenrol"
    ),
    # Terms and courses
    path(f"{SCHOOL}terms/", class_views.terms_and_courses, name="terms"),
    path(f"{SCHOOL}terms/new/", class_views.term_form, name="term_create"),
    path(f"{SCHOOL}terms/<int:term_id>/edit/", class_views.term_form, name="term_edit"),
    path(f"{SCHOOL}courses/new/", class_views.course_form, name="course_create"),
    path(f"{SCHOOL}courses/<int:course_id>/edit/", class_views.course_form, name="course_edit"),
    # Audit log
    path(f"{SCHOOL}audit/", views.audit_log, name="audit"),
    # Outside the admin's pages
    path("invitations/<str:token>/", public_views.invitation, name="invitation"),
    path("children/", public_views.children, name="children"),
    path("children/<int:school_id>/<int:pupil_id>/", public_views.child_week, name="child_week"),
]
