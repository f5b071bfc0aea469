"""What a OneRoster CSV bundle contains: its files, their columns, and the role vocabularies.

Column lists follow the 1EdTech OneRoster CSV bindings, 1.1 and 1.2. Only the columns we need are
required of a file (the spec's required columns); other columns are read when present and ignored
when unknown, as extension columns (`metadata.*`) are. In 1.2 the roles of a person moved from
`users.csv` (`role`, `orgSourcedIds`) to their own file, `roles.csv`.
"""

from __future__ import annotations

from typing import Final

from accounts.models import Role
from classrooms.models import EnrollmentRole

VERSIONS: Final = ("1.1", "1.2")
MODES: Final = ("bulk", "delta", "absent")

MANIFEST: Final = "manifest.csv"
ORGS: Final = "orgs.csv"
SESSIONS: Final = "academicSessions.csv"
COURSES: Final = "courses.csv"
CLASSES: Final = "classes.csv"
USERS: Final = "users.csv"
ROLES: Final = "roles.csv"
ENROLLMENTS: Final = "enrollments.csv"
DEMOGRAPHICS: Final = "demographics.csv"

# Files we read, in the order they are checked.
ROSTER_FILES: Final = (ORGS, SESSIONS, COURSES, CLASSES, USERS, ROLES, ENROLLMENTS)

# Files a real export may carry that we accept and do not read: demographics, the gradebook and
# resources files of the same binding, and 1.2's user profiles.
IGNORED_FILES: Final = (
    DEMOGRAPHICS,
    "userProfiles.csv",
    "categories.csv",
    "lineItems.csv",
    "results.csv",
    "resources.csv",
    "classResources.csv",
    "courseResources.csv",
    "userResources.csv",
)

ALLOWED_FILES: Final = (MANIFEST, *ROSTER_FILES, *IGNORED_FILES)
_BY_LOWER: Final = {name.lower(): name for name in ALLOWED_FILES}


def canonical_file_name(name: str) -> str | None:
    """The spec's spelling of a file name (`Users.CSV` -> `users.csv`), or None if unknown."""
    return _BY_LOWER.get(name.lower())


def manifest_key(file_name: str) -> str:
    """`users.csv` -> `file.users`, the manifest property that says how the file is sent."""
    return "file." + file_name.removesuffix(".csv")


_COMMON = ("sourcedId", "status", "dateLastModified")

COLUMNS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "1.1": {
        MANIFEST: ("propertyName", "value"),
        ORGS: (*_COMMON, "name", "type", "identifier", "parentSourcedId"),
        SESSIONS: (
            *_COMMON,
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ),
        COURSES: (
            *_COMMON,
            "schoolYearSourcedId",
            "title",
            "courseCode",
            "grades",
            "orgSourcedId",
            "subjects",
            "subjectCodes",
        ),
        CLASSES: (
            *_COMMON,
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ),
        USERS: (
            *_COMMON,
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "sms",
            "phone",
            "agentSourcedIds",
            "grades",
            "password",
        ),
        ENROLLMENTS: (
            *_COMMON,
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ),
    },
}
COLUMNS["1.2"] = {
    **COLUMNS["1.1"],
    USERS: (
        *_COMMON,
        "enabledUser",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
        "userMasterIdentifier",
        "resourceSourcedIds",
        "preferredGivenName",
        "preferredMiddleName",
        "preferredFamilyName",
        "primaryOrgSourcedId",
        "pronouns",
    ),
    ROLES: (
        *_COMMON,
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ),
}

REQUIRED: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "1.1": {
        MANIFEST: ("propertyName", "value"),
        ORGS: ("sourcedId", "name", "type"),
        SESSIONS: ("sourcedId", "title", "type", "startDate", "endDate", "schoolYear"),
        COURSES: ("sourcedId", "title", "orgSourcedId"),
        CLASSES: (
            "sourcedId",
            "title",
            "courseSourcedId",
            "classType",
            "schoolSourcedId",
            "termSourcedIds",
        ),
        USERS: (
            "sourcedId",
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "givenName",
            "familyName",
        ),
        ENROLLMENTS: ("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
    },
}
REQUIRED["1.2"] = {
    **REQUIRED["1.1"],
    USERS: ("sourcedId", "enabledUser", "username", "givenName", "familyName"),
    ROLES: ("sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"),
}

# Required columns that may still be left empty on a row: some people have one name only.
MAY_BE_EMPTY: Final = frozenset({"familyName"})

# A person's role in an org (1.1 users.role, 1.2 roles.role) -> their membership in the school.
# Aides, proctors and counsellors supervise lessons: they become teachers, who reach only the
# classes they are enrolled in, so the mapping grants nothing beyond those classes.
USER_ROLES: Final[dict[str, str]] = {
    "student": Role.PUPIL,
    "teacher": Role.TEACHER,
    "aide": Role.TEACHER,
    "proctor": Role.TEACHER,
    "counselor": Role.TEACHER,
    "administrator": Role.ADMIN,
    "siteAdministrator": Role.ADMIN,
    "principal": Role.ADMIN,
    "districtAdministrator": Role.ADMIN,
    "systemAdministrator": Role.ADMIN,
    "parent": Role.GUARDIAN,
    "guardian": Role.GUARDIAN,
    "relative": Role.GUARDIAN,
}
USER_ROLES_LOWER: Final = {name.lower(): role for name, role in USER_ROLES.items()}

# A person's role on a class roster (enrollments.role) -> their enrollment role.
ENROLLMENT_ROLES: Final[dict[str, str]] = {
    "student": EnrollmentRole.PUPIL,
    "teacher": EnrollmentRole.TEACHER,
    "aide": EnrollmentRole.TEACHER,
    "proctor": EnrollmentRole.TEACHER,
    "administrator": EnrollmentRole.TEACHER,
}
ENROLLMENT_ROLES_LOWER: Final = {name.lower(): role for name, role in ENROLLMENT_ROLES.items()}

# Our roles written back out by the export (1.2 vocabulary).
EXPORT_USER_ROLES: Final[dict[str, str]] = {
    Role.PUPIL: "student",
    Role.TEACHER: "teacher",
    Role.ADMIN: "administrator",
    Role.GUARDIAN: "guardian",
}
EXPORT_ENROLLMENT_ROLES: Final[dict[str, str]] = {
    EnrollmentRole.PUPIL: "student",
    EnrollmentRole.TEACHER: "teacher",
}

SESSION_TYPES: Final = frozenset({"term", "semester", "schoolYear", "gradingPeriod"})
STATUSES: Final = frozenset({"active", "tobedeleted"})
