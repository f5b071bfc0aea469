"""Operators' view of the school's domain in the Django admin (school admins use the pages)."""

from django.contrib import admin

from classrooms.models import Course, Enrollment, Lesson, School, SchoolClass, Term


@admin.register(School)
class SchoolAdmin(admin.ModelAdmin[School]):
    list_display = ("name", "slug", "time_zone")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}  # noqa: RUF012 -- read by Django as a class attribute


@admin.register(Term)
class TermAdmin(admin.ModelAdmin[Term]):
    list_display = ("name", "school", "starts_on", "ends_on")
    list_filter = ("school",)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin[Course]):
    list_display = ("title", "code", "school")
    list_filter = ("school",)
    search_fields = ("title", "code")


class EnrollmentInline(admin.TabularInline[Enrollment, SchoolClass]):
    model = Enrollment
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "school")


@admin.register(SchoolClass)
class SchoolClassAdmin(admin.ModelAdmin[SchoolClass]):
    list_display = ("name", "course", "term", "school", "archived_at")
    list_filter = ("school", "term")
    search_fields = ("name",)
    inlines = (EnrollmentInline,)


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin[Lesson]):
    list_display = ("title", "school_class", "starts_at", "ends_at", "state")
    list_filter = ("state", "school")
    date_hierarchy = "starts_at"
    search_fields = ("title", "school_class__name")
    readonly_fields = ("key",)
