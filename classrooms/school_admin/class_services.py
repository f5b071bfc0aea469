"""Writes on a school's classes and their rosters, terms and courses.

As in `services`: keyword-only, one transaction each with its audit event, a broken rule raises
`ValidationError` keyed by form field, and every id is looked up again inside the school (a term,
a course or a person from another school is refused, never used).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from classrooms.audit import AuditEntry, audit_record, audit_record_many
from classrooms.models import (
    AuditAction,
    Course,
    Enrollment,
    EnrollmentRole,
    School,
    SchoolClass,
    Term,
)
from classrooms.school_admin.selectors import members_with_role
from classrooms.school_admin.services import person_label, save_unique


def _others(queryset: QuerySet[Any], exclude: int | None) -> QuerySet[Any]:
    return queryset if exclude is None else queryset.exclude(pk=exclude)


# --- Classes --------------------------------------------------------------------------------------


def _term_and_course(*, school: School, term_id: int, course_id: int) -> tuple[Term, Course]:
    term = Term.objects.filter(school=school, id=term_id).first()
    if term is None:
        raise ValidationError({"term": _("Choose a term of this school.")})
    course = Course.objects.filter(school=school, id=course_id).first()
    if course is None:
        raise ValidationError({"course": _("Choose a course of this school.")})
    return term, course


def _class_name_taken(*, school: School, term: Term, name: str, exclude: int | None = None) -> bool:
    return _others(
        SchoolClass.objects.filter(school=school, term=term, name=name), exclude
    ).exists()


CLASS_NAME_TAKEN = gettext_lazy("This term already has a class with this name.")


def _class_audit(
    school_class: SchoolClass, actor: User, action: AuditAction, **details: Any
) -> None:
    audit_record(
        school_id=school_class.school_id,
        actor_id=actor.pk,
        action=action,
        target_type="class",
        target_id=school_class.pk,
        target_label=school_class.name,
        details=details,
    )


@transaction.atomic
def class_create(
    *, school: School, actor: User, name: str, term_id: int, course_id: int
) -> SchoolClass:
    """A new class of the school; its term and course must be the school's."""
    term, course = _term_and_course(school=school, term_id=term_id, course_id=course_id)
    name = name.strip()
    if _class_name_taken(school=school, term=term, name=name):
        raise ValidationError({"name": CLASS_NAME_TAKEN})
    school_class = SchoolClass(school=school, term=term, course=course, name=name)
    save_unique(school_class, field="name", message=CLASS_NAME_TAKEN)
    _class_audit(
        school_class, actor, AuditAction.CLASS_CREATED, term=term.name, course=course.title
    )
    return school_class


@transaction.atomic
def class_update(
    *,
    school: School,
    actor: User,
    school_class: SchoolClass,
    name: str,
    term_id: int,
    course_id: int,
) -> None:
    """Rename a class or move it to another term or course of the school."""
    if school_class.school_id != school.pk:
        raise ValidationError(_("This class is not in this school."))
    term, course = _term_and_course(school=school, term_id=term_id, course_id=course_id)
    name = name.strip()
    if _class_name_taken(school=school, term=term, name=name, exclude=school_class.pk):
        raise ValidationError({"name": CLASS_NAME_TAKEN})
    changed = {}
    if school_class.name != name:
        changed["name"] = [school_class.name, name]
    if school_class.term_id != term.pk:
        changed["term"] = [school_class.term.name, term.name]
    if school_class.course_id != course.pk:
        changed["course"] = [school_class.course.title, course.title]
    if not changed:
        return
    school_class.name, school_class.term, school_class.course = name, term, course
    save_unique(school_class, field="name", message=CLASS_NAME_TAKEN)
    _class_audit(school_class, actor, AuditAction.CLASS_UPDATED, changed=changed)


@transaction.atomic
def class_archive(*, school: School, actor: User, school_class: SchoolClass) -> None:
    """Put a class away: it leaves the home pages and its roster is frozen; nothing is deleted."""
    updated = SchoolClass.objects.filter(
        pk=school_class.pk, school=school, archived_at__isnull=True
    ).update(archived_at=timezone.now())
    if not updated:
        raise ValidationError(_("This class is already archived."))
    _class_audit(school_class, actor, AuditAction.CLASS_ARCHIVED)


@transaction.atomic
def class_restore(*, school: School, actor: User, school_class: SchoolClass) -> None:
    updated = SchoolClass.objects.filter(
        pk=school_class.pk, school=school, archived_at__isnull=False
    ).update(archived_at=None)
    if not updated:
        raise ValidationError(_("This class is not archived."))
    _class_audit(school_class, actor, AuditAction.CLASS_RESTORED)


def _roster_open(school: School, school_class: SchoolClass) -> None:
    if school_class.school_id != school.pk:
        raise ValidationError(_("This class is not in this school."))
    # Read again under a lock: an archive in another request must not let this change through.
    archived_at = (
        SchoolClass.objects.select_for_update()
        .filter(pk=school_class.pk)
        .values_list("archived_at", flat=True)
        .first()
    )
    if archived_at is not None:
        raise ValidationError(_("This class is archived: restore it to change its roster."))


def _enrollment_entry(
    action: AuditAction, school_class: SchoolClass, user: User, role: str
) -> AuditEntry:
    return AuditEntry(
        action=action,
        target_type="class",
        target_id=str(school_class.pk),
        target_label=f"{school_class.name}: {user.display_name}",
        details={"user_id": user.pk, "user": person_label(user), "role": role},
    )


@transaction.atomic
def enrollments_add(
    *,
    school: School,
    actor: User,
    school_class: SchoolClass,
    role: str,
    user_ids: Collection[int],
) -> int:
    """Put people on a class's roster as its teachers or pupils; return how many were added.

    Everyone must be an active member of the class's school holding the matching role (a pupil
    membership to be enrolled as a pupil, a teacher membership to teach): one id that is not, as
    an id posted from another school, refuses the whole batch. People already on the roster in
    that role are skipped, so posting twice adds nobody twice; someone on it in the other role is
    refused, since a person is a teacher or a pupil of a class, not both.
    """
    if role not in EnrollmentRole.values:
        raise ValidationError(_("Choose teacher or pupil."))
    _roster_open(school, school_class)
    wanted = set(user_ids)
    if not wanted:
        raise ValidationError({"users": _("Choose at least one person.")})
    eligible = {
        user.pk: user for user in members_with_role(school=school, role=role).filter(id__in=wanted)
    }
    if wanted - eligible.keys():
        message = (
            _("Only active pupils of this school can be enrolled as pupils.")
            if role == EnrollmentRole.PUPIL
            else _("Only active teachers of this school can teach its classes.")
        )
        raise ValidationError({"users": message})
    on_roster = dict(
        Enrollment.objects.filter(school_class=school_class, user_id__in=wanted).values_list(
            "user_id", "role"
        )
    )
    if any(held != role for held in on_roster.values()):
        raise ValidationError(
            {"users": _("Someone chosen is already on this class's roster in another role.")}
        )
    new = [eligible[user_id] for user_id in sorted(wanted - on_roster.keys())]
    Enrollment.objects.bulk_create(
        [Enrollment(school=school, school_class=school_class, user=user, role=role) for user in new]
    )
    audit_record_many(
        school_id=school.pk,
        actor_id=actor.pk,
        entries=[
            _enrollment_entry(AuditAction.ENROLLMENT_ADDED, school_class, u, role) for u in new
        ],
    )
    return len(new)


@transaction.atomic
def enrollments_remove(
    *, school: School, actor: User, school_class: SchoolClass, user_ids: Collection[int]
) -> int:
    """Take people off a class's roster; return how many were removed."""
    _roster_open(school, school_class)
    enrollments = list(
        Enrollment.objects.filter(
            school_class=school_class, user_id__in=set(user_ids)
        ).select_related("user")
    )
    if not enrollments:
        raise ValidationError({"users": _("Choose people on this class's roster.")})
    Enrollment.objects.filter(pk__in=[e.pk for e in enrollments]).delete()
    audit_record_many(
        school_id=school.pk,
        actor_id=actor.pk,
        entries=[
            _enrollment_entry(AuditAction.ENROLLMENT_REMOVED, school_class, e.user, e.role)
            for e in enrollments
        ],
    )
    return len(enrollments)


# --- Terms and courses ----------------------------------------------------------------------------

TERM_NAME_TAKEN = gettext_lazy("The school already has a term with this name.")
COURSE_CODE_TAKEN = gettext_lazy("The school already has a course with this code.")


def _check_term(
    school: School, name: str, starts_on: date, ends_on: date, exclude: int | None
) -> None:
    if ends_on < starts_on:
        raise ValidationError({"ends_on": _("The last day cannot come before the first day.")})
    if _others(Term.objects.filter(school=school, name=name), exclude).exists():
        raise ValidationError({"name": TERM_NAME_TAKEN})


def _audit_row(
    school: School, actor: User, action: AuditAction, row: Term | Course, **details: Any
) -> None:
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        action=action,
        target_type=row._meta.model_name or "",
        target_id=row.pk,
        target_label=str(row),
        details=details,
    )


@transaction.atomic
def term_create(*, school: School, actor: User, name: str, starts_on: date, ends_on: date) -> Term:
    name = name.strip()
    _check_term(school, name, starts_on, ends_on, exclude=None)
    term = Term(school=school, name=name, starts_on=starts_on, ends_on=ends_on)
    save_unique(term, field="name", message=TERM_NAME_TAKEN)
    _audit_row(
        school,
        actor,
        AuditAction.TERM_CREATED,
        term,
        starts_on=starts_on.isoformat(),
        ends_on=ends_on.isoformat(),
    )
    return term


@transaction.atomic
def term_update(
    *, school: School, actor: User, term: Term, name: str, starts_on: date, ends_on: date
) -> None:
    if term.school_id != school.pk:
        raise ValidationError(_("This term is not in this school."))
    name = name.strip()
    _check_term(school, name, starts_on, ends_on, exclude=term.pk)
    wanted = {"name": name, "starts_on": starts_on, "ends_on": ends_on}
    changed = {
        field: [str(getattr(term, field)), str(value)]
        for field, value in wanted.items()
        if getattr(term, field) != value
    }
    if not changed:
        return
    for field, value in wanted.items():
        setattr(term, field, value)
    save_unique(term, field="name", message=TERM_NAME_TAKEN)
    _audit_row(school, actor, AuditAction.TERM_UPDATED, term, changed=changed)


def _check_course(school: School, code: str, exclude: int | None) -> None:
    if _others(Course.objects.filter(school=school, code__iexact=code), exclude).exists():
        raise ValidationError({"code": COURSE_CODE_TAKEN})


@transaction.atomic
def course_create(*, school: School, actor: User, title: str, code: str) -> Course:
    title, code = title.strip(), code.strip()
    _check_course(school, code, exclude=None)
    course = Course(school=school, title=title, code=code)
    save_unique(course, field="code", message=COURSE_CODE_TAKEN)
    _audit_row(school, actor, AuditAction.COURSE_CREATED, course, code=code)
    return course


@transaction.atomic
def course_update(*, school: School, actor: User, course: Course, title: str, code: str) -> None:
    if course.school_id != school.pk:
        raise ValidationError(_("This course is not in this school."))
    title, code = title.strip(), code.strip()
    _check_course(school, code, exclude=course.pk)
    changed = {
        field: [getattr(course, field), value]
        for field, value in (("title", title), ("code", code))
        if getattr(course, field) != value
    }
    if not changed:
        return
    course.title, course.code = title, code
    save_unique(course, field="code", message=COURSE_CODE_TAKEN)
    _audit_row(school, actor, AuditAction.COURSE_UPDATED, course, changed=changed)
