"""Build OneRoster bundles in tests: a small school by default, every cell overridable.

`RosterBuilder.school()` gives a valid bundle of one school (two terms, two courses, two classes,
a teacher, three pupils, a guardian); tests change rows, remove them, add raw files, and render it
as separate files (`files()`) or a zip (`zip()`). Headers are written here from the spec, not
taken from the code under test.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

COMMON = ["sourcedId", "status", "dateLastModified"]
HEADERS_11 = {
    "orgs.csv": [*COMMON, "name", "type", "identifier", "parentSourcedId"],
    "academicSessions.csv": [
        *COMMON,
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ],
    "courses.csv": [
        *COMMON,
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ],
    "classes.csv": [
        *COMMON,
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
    ],
    "users.csv": [
        *COMMON,
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
    ],
    "enrollments.csv": [
        *COMMON,
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ],
}
HEADERS_12 = {
    **HEADERS_11,
    "users.csv": [
        *COMMON,
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
    ],
    "roles.csv": [
        *COMMON,
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ],
}
ORDER = [
    "orgs.csv",
    "academicSessions.csv",
    "courses.csv",
    "classes.csv",
    "users.csv",
    "roles.csv",
    "enrollments.csv",
]


def render_csv(header: list[str], rows: list[dict[str, str]], *, crlf: bool = True) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(
        buffer, fieldnames=header, lineterminator="\r\n" if crlf else "\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@dataclass
class RosterBuilder:
    version: str = "1.1"
    org: str = "org-school"
    mode: str = "bulk"
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # Replaces a file's bytes entirely (bad encodings, broken headers).
    raw: dict[str, bytes] = field(default_factory=dict)
    dropped_columns: dict[str, set[str]] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    bom: bool = False
    crlf: bool = True

    @classmethod
    def school(cls, version: str = "1.1", **fields: Any) -> RosterBuilder:
        builder = cls(version=version, **fields)
        builder.add("orgs.csv", sourcedId="org-district", name="District", type="district")
        builder.add(
            "orgs.csv",
            sourcedId=builder.org,
            name="Lycée Victor Hugo",
            type="school",
            identifier="victor-hugo",
            parentSourcedId="org-district",
        )
        builder.term("t-year", "2024-2025", "2024-09-01", "2025-07-04", type="schoolYear")
        builder.term("t-s1", "Semester 1", "2024-09-01", "2025-01-31", type="semester")
        builder.course("c-maths", "Mathematics", "MATH5")
        builder.course("c-french", "French", "FR5")
        builder.school_class("k-5b-maths", "5B Maths", "c-maths", "t-year")
        builder.school_class("k-5b-french", "5B French", "c-french", "t-s1")
        builder.user("u-teacher", "teacher", "Marie", "Curie", "marie.curie@school.test")
        builder.user("u-pupil1", "student", "Émile", "Zola", "emile@school.test")
        builder.user("u-pupil2", "student", "Zoé", "Ørsted", "zoe@school.test")
        builder.user("u-pupil3", "student", "Paul", "Verlaine", "paul@school.test")
        builder.user("u-parent", "parent", "Anne", "Zola", "anne.zola@home.test", agents="u-pupil1")
        builder.enroll("e-1", "k-5b-maths", "u-teacher", "teacher")
        builder.enroll("e-2", "k-5b-maths", "u-pupil1", "student")
        builder.enroll("e-3", "k-5b-maths", "u-pupil2", "student")
        builder.enroll("e-4", "k-5b-french", "u-teacher", "teacher")
        builder.enroll("e-5", "k-5b-french", "u-pupil3", "student")
        return builder

    # --- rows ------------------------------------------------------------------------------------

    def add(self, file: str, **row: str) -> dict[str, str]:
        self.rows.setdefault(file, []).append(dict(row))
        return self.rows[file][-1]

    def term(self, sid: str, title: str, start: str, end: str, type: str = "term") -> None:
        self.add(
            "academicSessions.csv",
            sourcedId=sid,
            title=title,
            type=type,
            startDate=start,
            endDate=end,
            schoolYear="2025",
        )

    def course(self, sid: str, title: str, code: str) -> None:
        self.add("courses.csv", sourcedId=sid, title=title, courseCode=code, orgSourcedId=self.org)

    def school_class(self, sid: str, title: str, course: str, terms: str) -> None:
        self.add(
            "classes.csv",
            sourcedId=sid,
            title=title,
            courseSourcedId=course,
            classType="scheduled",
            schoolSourcedId=self.org,
            termSourcedIds=terms,
        )

    def user(
        self,
        sid: str,
        role: str,
        given: str,
        family: str,
        email: str,
        agents: str = "",
        enabled: str = "true",
    ) -> None:
        self.add(
            "users.csv",
            sourcedId=sid,
            enabledUser=enabled,
            orgSourcedIds=self.org,
            role=role,
            username=email,
            givenName=given,
            familyName=family,
            email=email,
            agentSourcedIds=agents,
            primaryOrgSourcedId=self.org,
        )
        if self.version == "1.2":
            self.add(
                "roles.csv",
                sourcedId=f"r-{sid}",
                userSourcedId=sid,
                roleType="primary",
                role=role,
                orgSourcedId=self.org,
            )

    def enroll(self, sid: str, school_class: str, user: str, role: str) -> None:
        self.add(
            "enrollments.csv",
            sourcedId=sid,
            classSourcedId=school_class,
            schoolSourcedId=self.org,
            userSourcedId=user,
            role=role,
        )

    def row(self, file: str, sid: str) -> dict[str, str]:
        return next(row for row in self.rows[file] if row["sourcedId"] == sid)

    def remove(self, file: str, sid: str) -> None:
        self.rows[file] = [row for row in self.rows[file] if row["sourcedId"] != sid]

    def remove_user(self, sid: str) -> None:
        self.remove("users.csv", sid)
        if "roles.csv" in self.rows:
            self.rows["roles.csv"] = [
                row for row in self.rows["roles.csv"] if row["userSourcedId"] != sid
            ]
        self.rows["enrollments.csv"] = [
            row for row in self.rows["enrollments.csv"] if row["userSourcedId"] != sid
        ]

    # --- rendering -------------------------------------------------------------------------------

    def header(self, file: str) -> list[str]:
        headers = HEADERS_12 if self.version == "1.2" else HEADERS_11
        dropped = self.dropped_columns.get(file, set())
        return [column for column in headers[file] if column not in dropped]

    def manifest(self) -> bytes:
        lines = [
            {"propertyName": "manifest.version", "value": "1.0"},
            {"propertyName": "oneroster.version", "value": self.version},
        ]
        for file in ORDER:
            if file == "roles.csv" and self.version == "1.1":
                continue
            present = file in self.rows or file in self.raw
            mode = self.modes.get(file, self.mode if present else "absent")
            lines.append({"propertyName": f"file.{file[:-4]}", "value": mode})
        return render_csv(["propertyName", "value"], lines, crlf=self.crlf)

    def files(self) -> list[tuple[str, bytes]]:
        out = [("manifest.csv", self.raw.get("manifest.csv", self.manifest()))]
        for file in ORDER:
            if file in self.raw:
                out.append((file, self.raw[file]))
            elif file in self.rows:
                data = render_csv(self.header(file), self.rows[file], crlf=self.crlf)
                out.append((file, (b"\xef\xbb\xbf" if self.bom else b"") + data))
        return out

    def zip(self, folder: str = "") -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files():
                archive.writestr(f"{folder}{name}", data)
        return buffer.getvalue()
