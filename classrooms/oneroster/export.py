"""Write a school's roster as a OneRoster 1.2 CSV zip (bulk): what an import reads back.

Active people (a membership not switched off), classes not archived, their terms and courses, and
the enrollments between them. A row without a sourcedId gets one made from its primary key
(`hr-user-42`): stable for as long as the row lives, and not written back, because an export is a
read — storing ids would turn rows made by hand into imported ones, which a later bulk import
could then deactivate. The school's org is the org of its last import, or `hr-school-<pk>`.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterable

from accounts.models import Guardianship, Membership, Role, User
from classrooms.models import Course, Enrollment, School, SchoolClass, Term
from classrooms.oneroster import schema

VERSION = "1.2"


def _csv(columns: tuple[str, ...], rows: Iterable[dict[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def roster_zip(school: School) -> bytes:
    """The school's roster as zip bytes (see the module docstring for what is in it)."""
    org = school.org_sourced_id or f"hr-school-{school.pk}"
    columns = schema.COLUMNS[VERSION]
    files: dict[str, bytes] = {}
    files[schema.ORGS] = _csv(
        columns[schema.ORGS],
        [{"sourcedId": org, "name": school.name, "type": "school", "identifier": school.slug}],
    )
    classes = list(
        SchoolClass.objects.filter(school=school, archived_at__isnull=True).values_list(
            "pk", "sourced_id", "name", "term_id", "course_id"
        )
    )
    term_ids = {row[3] for row in classes}
    course_ids = {row[4] for row in classes}
    terms = {
        pk: (sid or f"hr-term-{pk}", name, starts_on, ends_on)
        for pk, sid, name, starts_on, ends_on in Term.objects.filter(
            school=school, pk__in=term_ids
        ).values_list("pk", "sourced_id", "name", "starts_on", "ends_on")
    }
    courses = {
        pk: (sid or f"hr-course-{pk}", title, code)
        for pk, sid, title, code in Course.objects.filter(
            school=school, pk__in=course_ids
        ).values_list("pk", "sourced_id", "title", "code")
    }
    files[schema.SESSIONS] = _csv(
        columns[schema.SESSIONS],
        [
            {
                "sourcedId": sid,
                "title": name,
                "type": "term",
                "startDate": starts_on.isoformat(),
                "endDate": ends_on.isoformat(),
                "schoolYear": str(ends_on.year),
            }
            for sid, name, starts_on, ends_on in terms.values()
        ],
    )
    files[schema.COURSES] = _csv(
        columns[schema.COURSES],
        [
            {"sourcedId": sid, "title": title, "courseCode": code, "orgSourcedId": org}
            for sid, title, code in courses.values()
        ],
    )
    class_ids = {pk: sid or f"hr-class-{pk}" for pk, sid, *_ in classes}
    files[schema.CLASSES] = _csv(
        columns[schema.CLASSES],
        [
            {
                "sourcedId": class_ids[pk],
                "title": name,
                "courseSourcedId": courses[course_id][0],
                "classType": "scheduled",
                "schoolSourcedId": org,
                "termSourcedIds": terms[term_id][0],
            }
            for pk, _, name, term_id, course_id in classes
        ],
    )
    user_ids = _write_people(school, org, files)
    files[schema.ENROLLMENTS] = _csv(
        columns[schema.ENROLLMENTS],
        [
            {
                "sourcedId": sid or f"hr-enrollment-{pk}",
                "classSourcedId": class_ids[class_id],
                "schoolSourcedId": org,
                "userSourcedId": user_ids[user_id],
                "role": schema.EXPORT_ENROLLMENT_ROLES[role],
            }
            for pk, sid, class_id, user_id, role in Enrollment.objects.filter(
                school=school
            ).values_list("pk", "sourced_id", "school_class_id", "user_id", "role")
            if class_id in class_ids and user_id in user_ids
        ],
    )
    manifest = [
        {"propertyName": "manifest.version", "value": "1.0"},
        {"propertyName": "oneroster.version", "value": VERSION},
        *(
            {
                "propertyName": schema.manifest_key(name),
                "value": "bulk" if name in files else "absent",
            }
            for name in schema.ROSTER_FILES
        ),
        {"propertyName": "source.systemName", "value": "Homeroom"},
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(schema.MANIFEST, _csv(("propertyName", "value"), manifest))
        for name in schema.ROSTER_FILES:
            if name in files:
                archive.writestr(name, files[name])
    return buffer.getvalue()


def _write_people(school: School, org: str, files: dict[str, bytes]) -> dict[int, str]:
    """users.csv and roles.csv; returns each exported person's sourcedId by user pk."""
    roles: dict[int, list[str]] = defaultdict(list)
    sourced: dict[int, str] = {}
    for user_id, role, sid in (
        Membership.objects.active()
        .filter(school=school)
        .order_by("user_id", "role")
        .values_list("user_id", "role", "sourced_id")
    ):
        roles[user_id].append(role)
        if sid:
            sourced.setdefault(user_id, sid)
    user_ids = {pk: sourced.get(pk) or f"hr-user-{pk}" for pk in roles}
    agents: dict[int, list[str]] = defaultdict(list)
    for guardian_id, pupil_id in Guardianship.objects.filter(school=school).values_list(
        "guardian_id", "pupil_id"
    ):
        if guardian_id in user_ids and pupil_id in user_ids:
            agents[pupil_id].append(user_ids[guardian_id])
            agents[guardian_id].append(user_ids[pupil_id])
    columns = schema.COLUMNS[VERSION]
    users = User.objects.filter(pk__in=list(user_ids)).values_list(
        "pk", "email", "given_name", "family_name"
    )
    files[schema.USERS] = _csv(
        columns[schema.USERS],
        [
            {
                "sourcedId": user_ids[pk],
                "enabledUser": "true",
                "username": email,
                "givenName": given_name,
                "familyName": family_name,
                "email": email,
                "agentSourcedIds": ",".join(sorted(agents[pk])),
                "primaryOrgSourcedId": org,
            }
            for pk, email, given_name, family_name in users.order_by("pk")
        ],
    )
    files[schema.ROLES] = _csv(
        columns[schema.ROLES],
        [
            {
                "sourcedId": f"{user_ids[pk]}-{role}",
                "userSourcedId": user_ids[pk],
                "roleType": "primary" if index == 0 else "secondary",
                "role": schema.EXPORT_USER_ROLES[Role(role)],
                "orgSourcedId": org,
            }
            for pk, held in roles.items()
            for index, role in enumerate(held)
        ],
    )
    return user_ids
