"""Validate a bundle against one school and plan its changes: the one path every import takes.

Order: the manifest (version, and for each file bulk | delta | absent), each file's header
(missing required columns stop the check there: rows cannot be read without them), the school's
org, then sessions, courses, classes, people and enrollments.

Which org is this school?
1. if the school had an import applied before, the org sourcedId that import used
   (`School.org_sourced_id`, set on apply) — the bundle must carry the same org;
2. otherwise the org whose `identifier` is the school's short name (slug), or whose `name` is the
   school's name (ignoring case);
3. otherwise the only org of type `school` in orgs.csv.
Rows of another org are errors ("an org that is not this school"); courses, people and roles may
also belong to the school's parent org (its district), as exports often put them there.

Bulk and delta (per file, from the manifest): a bulk file is the whole truth, so what the school
imported before (non-empty sourcedId) and the file no longer lists is deactivated (people), archived
(classes) or removed (enrollments, guardian links) — never deleted; what was made by hand (empty
sourcedId) is left alone. A delta file changes only the rows it lists; `status=tobedeleted` stands
for the deactivation. `dateLastModified` is checked to be a date and time, and not compared: we
keep no per-row timestamp, and an operator who sends an old delta means it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from classrooms.models import School
from classrooms.oneroster import schema
from classrooms.oneroster.bundle import Bundle
from classrooms.oneroster.changes import Changes, Plan
from classrooms.oneroster.context import PlanContext
from classrooms.oneroster.plan_catalog import plan_classes, plan_courses, plan_sessions
from classrooms.oneroster.plan_enrollments import count_removed_enrollments, plan_enrollments
from classrooms.oneroster.plan_people import plan_people
from classrooms.oneroster.report import ErrorLog, Report, empty_counts
from classrooms.oneroster.state import SchoolState, load_school_state
from classrooms.oneroster.tables import Table, decode, parse

Progress = Callable[[int], None]


def _no_progress(percent: int) -> None:
    return None


def _read_manifest(bundle: Bundle, errors: ErrorLog) -> tuple[str, dict[str, str]]:
    """The bundle's version and each roster file's mode."""
    name = schema.MANIFEST
    modes: dict[str, str] = {}
    version = ""
    data = bundle.files.get(name)
    if data is None:
        errors.add(
            name,
            0,
            "",
            "manifest.csv is missing. Every OneRoster export has one: it says the version and "
            "which files are sent.",
        )
        return "", modes
    text = decode(name, data, errors)
    table = None if text is None else parse(name, text, ("propertyName", "value"), errors)
    if table is None:
        return "", modes
    for column in ("propertyName", "value"):
        if not table.has(column):
            errors.add(name, 1, column, f"The column {column} is missing.")
            return "", modes
    get_name, get_value = table.getter("propertyName"), table.getter("value")
    by_key = {schema.manifest_key(file): file for file in schema.ALLOWED_FILES}
    for line, values in zip(table.lines, table.rows, strict=True):
        key, value = get_name(values), get_value(values)
        if key == "oneroster.version":
            version = value
            if value not in schema.VERSIONS:
                errors.add(
                    name,
                    line,
                    "value",
                    f'OneRoster version "{value}" is not one we read: export as 1.1 or 1.2.',
                )
        elif key in by_key:
            if value.lower() not in schema.MODES:
                errors.add(
                    name,
                    line,
                    "value",
                    f'{key} must be "bulk", "delta" or "absent", not "{value}".',
                )
            modes[by_key[key]] = value.lower()
    if not version:
        # Older exports leave it out; roles.csv exists only in 1.2.
        version = "1.2" if schema.ROLES in bundle.files else "1.1"
    for file in schema.ROSTER_FILES:
        mode = modes.get(file)
        present = file in bundle.files
        if present and mode is None:
            modes[file] = "bulk"
        elif present and mode == "absent":
            errors.add(
                name, 0, "", f"manifest.csv says {file} is absent, but the bundle contains it."
            )
        elif not present and mode in ("bulk", "delta"):
            errors.add(name, 0, "", f"manifest.csv lists {file} as {mode}, but it is missing.")
    return version, modes


def _read_tables(
    bundle: Bundle, version: str, modes: dict[str, str], errors: ErrorLog
) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for name in schema.ROSTER_FILES:
        data = bundle.files.get(name)
        if data is None or modes.get(name) not in ("bulk", "delta"):
            continue
        if name not in schema.COLUMNS[version]:
            errors.add(name, 0, "", f"{name} belongs to OneRoster 1.2, but the manifest says 1.1.")
            continue
        text = decode(name, data, errors)
        table = None if text is None else parse(name, text, schema.COLUMNS[version][name], errors)
        if table is None:
            continue
        required = list(schema.REQUIRED[version][name])
        if modes[name] == "delta":
            required += ["status", "dateLastModified"]
        for column in required:
            if not table.has(column):
                errors.add(name, 1, column, f"The column {column} is missing from the header.")
        tables[name] = table
    return tables


def _find_school_org(ctx: PlanContext) -> None:
    state, school = ctx.state, ctx.state.school
    table = ctx.tables.get(schema.ORGS)
    if table is None:
        if state.org_sourced_id:
            ctx.org_sourced_id = state.org_sourced_id
            ctx.orgs_allowed = {state.org_sourced_id}
        else:
            ctx.error(
                schema.ORGS,
                0,
                "",
                "orgs.csv is missing. The first import of a school needs it, to find the school.",
            )
        return
    get_id, get_name = table.getter("sourcedId"), table.getter("name")
    get_type, get_ident = table.getter("type"), table.getter("identifier")
    get_parent = table.getter("parentSourcedId")
    rows = list(zip(table.lines, table.rows, strict=True))
    found = None
    if state.org_sourced_id:
        found = next((r for r in rows if get_id(r[1]) == state.org_sourced_id), None)
        if found is None:
            ctx.error(
                schema.ORGS,
                1,
                "sourcedId",
                f"orgs.csv does not list this school's organisation ({state.org_sourced_id}), "
                "which earlier imports used. Is this the roster of another school?",
            )
            return
    else:
        named = [
            r
            for r in rows
            if get_ident(r[1]).lower() == school.slug.lower()
            or get_name(r[1]).casefold() == school.name.casefold()
        ]
        schools = [r for r in rows if get_type(r[1]) == "school"]
        found = named[0] if len(named) == 1 else schools[0] if len(schools) == 1 else None
        if found is None:
            ctx.error(
                schema.ORGS,
                1,
                "name",
                f"None of the organisations in orgs.csv is clearly {school.name}. Give this "
                f'school\'s row the name "{school.name}" or the identifier "{school.slug}".',
            )
            return
    ctx.org_sourced_id = get_id(found[1])
    ctx.orgs_allowed = {ctx.org_sourced_id}
    if get_parent(found[1]):
        ctx.orgs_allowed.add(get_parent(found[1]))


def plan_bundle(
    *,
    school: School,
    bundle: Bundle,
    progress: Progress = _no_progress,
    state: SchoolState | None = None,
) -> Plan:
    """Check `bundle` against `school` as it is now; the plan's changes are empty if invalid."""
    errors = ErrorLog()
    version, modes = _read_manifest(bundle, errors)
    mode = "delta" if "delta" in modes.values() else "bulk"
    tables = _read_tables(bundle, version, modes, errors) if version in schema.VERSIONS else {}
    progress(20)
    if errors:
        return _invalid(version, mode, errors, bundle)
    ctx = PlanContext(
        state=state or load_school_state(school),
        version=version,
        modes=modes,
        tables=tables,
        now=timezone.now(),
        errors=errors,
    )
    progress(35)
    _find_school_org(ctx)
    if errors:
        return _invalid(version, mode, errors, bundle)
    plan_sessions(ctx)
    plan_courses(ctx)
    plan_classes(ctx)
    progress(50)
    plan_people(ctx)
    progress(75)
    plan_enrollments(ctx)
    count_removed_enrollments(ctx)
    progress(95)
    valid = not errors
    report = Report(
        valid=valid,
        version=version,
        mode=mode,
        errors=tuple(errors.items),
        error_count=errors.total,
        counts=ctx.counts,
        file_names=bundle.file_names,
    )
    return Plan(
        report=report,
        changes=ctx.changes if valid else Changes(),
        org_sourced_id=ctx.org_sourced_id,
        changed_sourced_ids=tuple(ctx.sample),
    )


def _invalid(version: str, mode: str, errors: ErrorLog, bundle: Bundle) -> Plan:
    report = Report(
        valid=False,
        version=version,
        mode=mode,
        errors=tuple(errors.items),
        error_count=errors.total,
        counts=empty_counts(),
        file_names=bundle.file_names,
    )
    return Plan(report=report, changes=Changes(), org_sourced_id="")
