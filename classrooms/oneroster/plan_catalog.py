"""Plan the school's catalogue: academic sessions -> terms, courses, classes.

Each row is matched to the school's row with the same sourcedId, or else to a row created by hand
(empty sourcedId) with the same natural key (a term's name, a course's code, a class's term and
name), which the import then adopts. Terms and courses have no archive flag, so a bulk file leaves
the ones it no longer lists as they are; classes it no longer lists are archived, never deleted.
"""

from __future__ import annotations

from classrooms.oneroster import schema
from classrooms.oneroster.changes import ClassChange, CourseChange, Ref, TermChange
from classrooms.oneroster.context import PlanContext, split_ids

NAME_MAX = 200
CODE_MAX = 64
SOURCED_ID_MAX = 255


def _known(
    ctx: PlanContext, name: str, bundle: dict[str, Ref], existing: dict[str, int], sourced_id: str
) -> Ref | None:
    """A referenced row: in the bundle, or (unless the file is bulk) already in the school."""
    if sourced_id in bundle:
        return bundle[sourced_id]
    if not ctx.is_bulk(name) and sourced_id in existing:
        return existing[sourced_id]
    return None


def plan_sessions(ctx: PlanContext) -> None:
    name = schema.SESSIONS
    state = ctx.state
    table = ctx.tables.get(name)
    if table is None:
        return
    get_title, get_type = table.getter("title"), table.getter("type")
    get_start, get_end = table.getter("startDate"), table.getter("endDate")
    names: dict[str, int] = {}
    counts = ctx.counts["academicSessions"]
    for row in ctx.rows(name):
        if row.deleted or ctx.too_long(name, row.line, "sourcedId", row.sourced_id, SOURCED_ID_MAX):
            continue
        title = get_title(row.values)
        kind = get_type(row.values)
        starts_on = ctx.date(name, row.line, "startDate", get_start(row.values))
        ends_on = ctx.date(name, row.line, "endDate", get_end(row.values))
        bad = ctx.too_long(name, row.line, "title", title, NAME_MAX)
        if kind not in schema.SESSION_TYPES:
            bad = True
            ctx.error(
                name,
                row.line,
                "type",
                f'"{kind}" is not a kind of session we know: write term, semester, schoolYear or '
                "gradingPeriod.",
            )
        if title in names:
            bad = True
            ctx.error(
                name,
                row.line,
                "title",
                f'Two sessions are called "{title}" (see line {names[title]}); each term of the '
                "school needs its own name.",
            )
        names[title] = row.line
        if bad or starts_on is None or ends_on is None:
            ctx.broken.add((name, row.sourced_id))
            continue
        if ends_on < starts_on:
            ctx.error(name, row.line, "endDate", "The session ends before it starts.")
            ctx.broken.add((name, row.sourced_id))
            continue
        current = state.terms.get(row.sourced_id)
        if current is None:
            adopted = state.terms_by_name.get(title)
            if adopted is not None and adopted.sourced_id:
                ctx.error(
                    name,
                    row.line,
                    "title",
                    f'The school already has a term called "{title}", from another sourcedId '
                    f"({adopted.sourced_id}).",
                )
                continue
            current = adopted
        change = TermChange(row.sourced_id, title, starts_on, ends_on)
        if current is None:
            counts.create += 1
            ctx.changes.terms.append(change)
            ctx.terms[row.sourced_id] = row.sourced_id
            ctx.changed(row.sourced_id)
            continue
        ctx.terms[row.sourced_id] = current.pk
        if (current.name, current.starts_on, current.ends_on, current.sourced_id) == (
            title,
            starts_on,
            ends_on,
            row.sourced_id,
        ):
            counts.unchanged += 1
            continue
        change.pk = current.pk
        counts.update += 1
        ctx.changes.terms.append(change)
        ctx.changed(row.sourced_id)


def plan_courses(ctx: PlanContext) -> None:
    name = schema.COURSES
    state = ctx.state
    table = ctx.tables.get(name)
    if table is None:
        return
    get_title, get_code = table.getter("title"), table.getter("courseCode")
    get_org = table.getter("orgSourcedId")
    codes: dict[str, int] = {}
    counts = ctx.counts["courses"]
    for row in ctx.rows(name):
        if row.deleted or ctx.too_long(name, row.line, "sourcedId", row.sourced_id, SOURCED_ID_MAX):
            continue
        title = get_title(row.values)
        # The code is unique in the school; without one, the sourcedId serves.
        code = get_code(row.values) or row.sourced_id[:CODE_MAX]
        org = get_org(row.values)
        bad = ctx.too_long(name, row.line, "title", title, NAME_MAX)
        bad = ctx.too_long(name, row.line, "courseCode", code, CODE_MAX) or bad
        if org not in ctx.orgs_allowed:
            bad = True
            ctx.error(name, row.line, "orgSourcedId", _foreign_org(ctx, org))
        if code in codes:
            bad = True
            ctx.error(
                name,
                row.line,
                "courseCode",
                f'Two courses have the code "{code}" (see line {codes[code]}).',
            )
        codes[code] = row.line
        if bad:
            ctx.broken.add((name, row.sourced_id))
            continue
        current = state.courses.get(row.sourced_id)
        if current is None:
            adopted = state.courses_by_code.get(code)
            if adopted is not None and adopted.sourced_id:
                ctx.error(
                    name,
                    row.line,
                    "courseCode",
                    f'The school already has a course with the code "{code}", from another '
                    f"sourcedId ({adopted.sourced_id}).",
                )
                continue
            current = adopted
        change = CourseChange(row.sourced_id, title, code)
        if current is None:
            counts.create += 1
            ctx.changes.courses.append(change)
            ctx.courses[row.sourced_id] = row.sourced_id
            ctx.changed(row.sourced_id)
            continue
        ctx.courses[row.sourced_id] = current.pk
        if (current.title, current.code, current.sourced_id) == (title, code, row.sourced_id):
            counts.unchanged += 1
            continue
        change.pk = current.pk
        counts.update += 1
        ctx.changes.courses.append(change)
        ctx.changed(row.sourced_id)


def _foreign_org(ctx: PlanContext, org: str) -> str:
    return (
        f'This row belongs to the organisation "{org}", which is not {ctx.state.school.name} '
        f"({ctx.org_sourced_id}). One import covers one school."
    )


def plan_classes(ctx: PlanContext) -> None:
    name = schema.CLASSES
    state = ctx.state
    table = ctx.tables.get(name)
    existing_terms = {sid: term.pk for sid, term in state.terms.items()}
    existing_courses = {sid: course.pk for sid, course in state.courses.items()}
    if table is None:
        return
    get_title, get_course = table.getter("title"), table.getter("courseSourcedId")
    get_terms, get_school = table.getter("termSourcedIds"), table.getter("schoolSourcedId")
    keys: dict[tuple[Ref, str], int] = {}
    listed: set[str] = set()
    for row in ctx.rows(name):
        listed.add(row.sourced_id)
        if row.deleted:
            _archive(ctx, row.sourced_id)
            continue
        title = get_title(row.values)
        course_id, term_ids = get_course(row.values), split_ids(get_terms(row.values))
        bad = ctx.too_long(name, row.line, "title", title, NAME_MAX)
        bad = ctx.too_long(name, row.line, "sourcedId", row.sourced_id, SOURCED_ID_MAX) or bad
        school_org = get_school(row.values)
        if school_org != ctx.org_sourced_id:
            bad = True
            ctx.error(name, row.line, "schoolSourcedId", _foreign_org(ctx, school_org))
        course = _known(ctx, schema.COURSES, ctx.courses, existing_courses, course_id)
        if course is None:
            bad = True
            if (schema.COURSES, course_id) not in ctx.broken:
                ctx.error(
                    name,
                    row.line,
                    "courseSourcedId",
                    f"This class's course ({course_id}) is not in courses.csv.",
                )
        term = _known(ctx, schema.SESSIONS, ctx.terms, existing_terms, term_ids[0])
        if term is None:
            bad = True
            if (schema.SESSIONS, term_ids[0]) not in ctx.broken:
                ctx.error(
                    name,
                    row.line,
                    "termSourcedIds",
                    f"This class's term ({term_ids[0]}) is not in academicSessions.csv.",
                )
        if bad or term is None or course is None:
            ctx.broken.add((name, row.sourced_id))
            continue
        if (term, title) in keys:
            ctx.error(
                name,
                row.line,
                "title",
                f'Two classes of the same term are called "{title}" (see line '
                f"{keys[(term, title)]}).",
            )
            ctx.broken.add((name, row.sourced_id))
            continue
        keys[(term, title)] = row.line
        _plan_class(ctx, row.line, ClassChange(row.sourced_id, title, term, course))
    _plan_class_name_clashes(ctx, keys, listed)
    if ctx.is_bulk(name):
        for sourced_id in state.classes.keys() - listed:
            _archive(ctx, sourced_id)


def _plan_class(ctx: PlanContext, line: int, change: ClassChange) -> None:
    state = ctx.state
    counts = ctx.counts["classes"]
    current = state.classes.get(change.sourced_id)
    if current is None and isinstance(change.term, int):
        adopted = state.classes_by_key.get((change.term, change.name))
        if adopted is not None and not adopted.sourced_id:
            current = adopted
    if current is None:
        counts.create += 1
        ctx.changes.classes.append(change)
        ctx.classes[change.sourced_id] = change.sourced_id
        ctx.changed(change.sourced_id)
        return
    ctx.classes[change.sourced_id] = current.pk
    same = (current.name, current.term_id, current.course_id, current.sourced_id) == (
        change.name,
        change.term,
        change.course,
        change.sourced_id,
    )
    if same and not current.archived:
        counts.unchanged += 1
        return
    change.pk = current.pk
    counts.update += 1
    ctx.changes.classes.append(change)
    ctx.changed(change.sourced_id)


def _plan_class_name_clashes(
    ctx: PlanContext, keys: dict[tuple[Ref, str], int], listed: set[str]
) -> None:
    """A class of the bundle may not take the name of a class the bundle leaves in place."""
    planned = {change.pk for change in ctx.changes.classes if change.pk is not None}
    for record in ctx.state.classes_by_pk.values():
        if record.pk in planned or record.sourced_id in listed:
            continue
        line = keys.get((record.term_id, record.name))
        if line is None:
            continue
        if any(
            change.pk is None and change.term == record.term_id and change.name == record.name
            for change in ctx.changes.classes
        ):
            ctx.error(
                schema.CLASSES,
                line,
                "title",
                f'The school already has a class "{record.name}" in this term.',
            )


def _archive(ctx: PlanContext, sourced_id: str) -> None:
    record = ctx.state.classes.get(sourced_id)
    if record is None or record.archived:
        return
    ctx.counts["classes"].deactivate += 1
    ctx.changes.classes_archived.append(record.pk)
    ctx.changed(sourced_id)
