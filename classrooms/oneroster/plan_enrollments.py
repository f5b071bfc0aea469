"""Plan class rosters: enrollments -> who teaches and who attends each class.

An enrollment is matched by its sourcedId, then by its class and person (an enrollment made by
hand is adopted). Roles map as `schema.ENROLLMENT_ROLES` says. Bulk: an imported enrollment the
file no longer lists is removed (enrollments are links, not history). Delta: `tobedeleted` removes.
"""

from __future__ import annotations

from classrooms.oneroster import schema
from classrooms.oneroster.changes import EnrollmentChange, Ref
from classrooms.oneroster.context import PlanContext

SOURCED_ID_MAX = 255


def plan_enrollments(ctx: PlanContext) -> None:
    name = schema.ENROLLMENTS
    state = ctx.state
    counts = ctx.counts["enrollments"]
    table = ctx.tables.get(name)
    if table is None:
        return
    get_class, get_user = table.getter("classSourcedId"), table.getter("userSourcedId")
    get_school, get_role = table.getter("schoolSourcedId"), table.getter("role")
    classes_bulk, users_bulk = ctx.is_bulk(schema.CLASSES), ctx.is_bulk(schema.USERS)
    listed: set[str] = set()
    claimed: set[int] = set()
    pairs: dict[tuple[Ref, Ref], int] = {}
    replaced = 0
    for row in ctx.rows(name):
        listed.add(row.sourced_id)
        if row.deleted:
            record = state.enrollments.get(row.sourced_id)
            if record is not None:
                ctx.changes.enrollments_removed.add(record.pk)
                ctx.changed(row.sourced_id)
            continue
        class_id, user_id = get_class(row.values), get_user(row.values)
        school_class: Ref | None = ctx.classes.get(class_id)
        if school_class is None and not classes_bulk and class_id in state.classes:
            school_class = state.classes[class_id].pk
        user: Ref | None = ctx.users.get(user_id)
        if user is None and not users_bulk:
            user = state.user_by_sourced_id.get(user_id)
        bad = ctx.too_long(name, row.line, "sourcedId", row.sourced_id, SOURCED_ID_MAX)
        if school_class is None and (schema.CLASSES, class_id) not in ctx.broken:
            bad = True
            ctx.error(
                name, row.line, "classSourcedId", f"The class {class_id} is not in classes.csv."
            )
        if user is None and (schema.USERS, user_id) not in ctx.broken:
            bad = True
            ctx.error(name, row.line, "userSourcedId", f"The person {user_id} is not in users.csv.")
        school_org = get_school(row.values)
        if school_org != ctx.org_sourced_id:
            bad = True
            ctx.error(
                name,
                row.line,
                "schoolSourcedId",
                f'This row belongs to the organisation "{school_org}", which is not '
                f"{state.school.name} ({ctx.org_sourced_id}). One import covers one school.",
            )
        role = schema.ENROLLMENT_ROLES_LOWER.get(get_role(row.values).lower())
        if role is None:
            bad = True
            ctx.error(
                name,
                row.line,
                "role",
                f'"{get_role(row.values)}" is not a role on a class: write student or teacher.',
            )
        if bad or role is None or school_class is None or user is None:
            continue
        pair = (school_class, user)
        if pair in pairs:
            ctx.error(
                name,
                row.line,
                "userSourcedId",
                f"This person is already on this class's roster (line {pairs[pair]}).",
            )
            continue
        pairs[pair] = row.line
        change = EnrollmentChange(school_class, user, role, row.sourced_id)
        record = state.enrollments.get(row.sourced_id)
        if record is not None and (record.class_id, record.user_id) != pair:
            # The same sourcedId now ties another class or person: replace the link.
            ctx.changes.enrollments_removed.add(record.pk)
            claimed.add(record.pk)
            replaced += 1
            record = None
            counts.update += 1
            counts.create -= 1
        if record is None and isinstance(school_class, int) and isinstance(user, int):
            record = state.enrollments_by_key.get((school_class, user))
        if record is None:
            counts.create += 1
            ctx.changes.enrollments.append(change)
            ctx.changed(row.sourced_id)
            continue
        claimed.add(record.pk)
        ctx.changes.enrollments_removed.discard(record.pk)
        if (record.role, record.sourced_id) == (role, row.sourced_id):
            counts.unchanged += 1
            continue
        change.pk = record.pk
        counts.update += 1
        ctx.changes.enrollments.append(change)
        ctx.changed(row.sourced_id)
    if ctx.is_bulk(name):
        for sourced_id, record in state.enrollments.items():
            if sourced_id not in listed and record.pk not in claimed:
                ctx.changes.enrollments_removed.add(record.pk)
                ctx.changed(sourced_id)
    counts.deactivate = len(ctx.changes.enrollments_removed) - replaced


def count_removed_enrollments(ctx: PlanContext) -> None:
    """Enrollments removed because their person left, when enrollments.csv was not read."""
    if schema.ENROLLMENTS not in ctx.tables:
        ctx.counts["enrollments"].deactivate = len(ctx.changes.enrollments_removed)
