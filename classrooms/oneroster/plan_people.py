"""Plan the school's people: users (and 1.2's roles) -> accounts and memberships; guardians.

- A person is matched by their sourcedId on a membership of this school, then by email (without
  regard to case): they may already have an account from another school, which they keep.
- Email is the login, so a person without one is an error (1.1 and 1.2 both let `username` carry
  it: a username that is an email address is used). A placeholder address would make an account
  nobody can reach with an invitation.
- Roles map as `schema.USER_ROLES` says; an unknown role is an error. In 1.2 a person's roles come
  from roles.csv, and a person with none is an error.
- `enabledUser=false` keeps the membership but switched off (`deactivated_at`).
- An account shared with another school, or an operator's, is never renamed by an import.
- Bulk: a person imported before (a membership with a sourcedId) and missing from users.csv is
  deactivated (memberships switched off, enrollments removed), never deleted; roles that carry a
  sourcedId and are no longer listed are switched off. A role given by hand (empty sourcedId) is
  left alone. Delta: `status=tobedeleted` deactivates the person; others are left as they are.
- `agentSourcedIds` links a pupil and a guardian (either may list the other).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import Role
from classrooms.oneroster import schema
from classrooms.oneroster.changes import MembershipChange, Ref, UserChange
from classrooms.oneroster.context import PlanContext, Row, split_ids
from classrooms.oneroster.state import EnrollmentRecord, MembershipRecord, load_users_by_email

EMAIL_MAX = 254
NAME_MAX = 150
SOURCED_ID_MAX = 255


@dataclass(slots=True)
class Person:
    line: int
    sourced_id: str
    email: str
    given_name: str
    family_name: str
    enabled: bool
    agents: list[str]
    roles: set[str] = field(default_factory=set)
    roles_removed: set[str] = field(default_factory=set)
    user_id: int | None = None


def plan_people(ctx: PlanContext) -> None:
    people, deleted = _read_users(ctx)
    if ctx.version == "1.2":
        _read_roles(ctx, people)
    load_users_by_email(ctx.state, (person.email for person in people.values()))
    _match(ctx, people)
    for person in people.values():
        _plan_person(ctx, person)
    gone = set(deleted)
    if ctx.is_bulk(schema.USERS):
        gone |= ctx.state.user_by_sourced_id.keys() - people.keys()
    enrollments_of: dict[int, list[EnrollmentRecord]] = defaultdict(list)
    if gone:
        for enrollment in ctx.state.enrollments_by_key.values():
            enrollments_of[enrollment.user_id].append(enrollment)
    for sourced_id in sorted(gone):
        user_id = ctx.state.user_by_sourced_id.get(sourced_id)
        if user_id is not None and sourced_id not in people:
            _deactivate(ctx, user_id, sourced_id, enrollments_of[user_id])
    _plan_guardians(ctx, people)


def _email_of(ctx: PlanContext, row: Row, email: str, username: str) -> str | None:
    name = schema.USERS
    if not email and "@" in username:
        email = username
    if not email:
        ctx.error(
            name,
            row.line,
            "email",
            "This person has no email address. Homeroom needs one: it is how they log in.",
        )
        return None
    try:
        validate_email(email)
    except ValidationError:
        ctx.error(name, row.line, "email", f'"{email}" is not an email address.')
        return None
    if len(email) > EMAIL_MAX:
        ctx.error(name, row.line, "email", f"This is longer than {EMAIL_MAX} characters.")
        return None
    return email.lower()


def _read_users(ctx: PlanContext) -> tuple[dict[str, Person], list[str]]:
    name = schema.USERS
    table = ctx.tables.get(name)
    people: dict[str, Person] = {}
    deleted: list[str] = []
    if table is None:
        return people, deleted
    get = {column: table.getter(column) for column in schema.COLUMNS[ctx.version][name]}
    emails: dict[str, int] = {}
    for row in ctx.rows(name):
        if row.deleted:
            deleted.append(row.sourced_id)
            continue
        values = row.values
        bad = ctx.too_long(name, row.line, "sourcedId", row.sourced_id, SOURCED_ID_MAX)
        enabled = get["enabledUser"](values).lower()
        if enabled not in ("true", "false"):
            bad = True
            ctx.error(
                name,
                row.line,
                "enabledUser",
                f'enabledUser must be "true" or "false", not "{get["enabledUser"](values)}".',
            )
        given, family = get["givenName"](values), get["familyName"](values)
        bad = ctx.too_long(name, row.line, "givenName", given, NAME_MAX) or bad
        bad = ctx.too_long(name, row.line, "familyName", family, NAME_MAX) or bad
        email = _email_of(ctx, row, get["email"](values), get["username"](values))
        if email is not None and email in emails:
            bad = True
            ctx.error(
                name,
                row.line,
                "email",
                f"Two people have the email address {email} (see line {emails[email]}); "
                "each person needs their own.",
            )
        elif email is not None:
            emails[email] = row.line
        roles: set[str] = set()
        if ctx.version == "1.1":
            bad = (
                not _read_11_role(
                    ctx, row, get["role"](values), get["orgSourcedIds"](values), roles
                )
                or bad
            )
        else:
            primary = get["primaryOrgSourcedId"](values)
            if primary and primary not in ctx.orgs_allowed:
                bad = True
                ctx.error(name, row.line, "primaryOrgSourcedId", _foreign(ctx, primary))
        if bad or email is None:
            ctx.broken.add((name, row.sourced_id))
            continue
        people[row.sourced_id] = Person(
            row.line,
            row.sourced_id,
            email,
            given,
            family,
            enabled == "true",
            split_ids(get["agentSourcedIds"](values)),
            roles,
        )
    return people, deleted


def _foreign(ctx: PlanContext, org: str) -> str:
    return (
        f'This belongs to the organisation "{org}", which is not {ctx.state.school.name} '
        f"({ctx.org_sourced_id}). One import covers one school."
    )


def _map_role(ctx: PlanContext, file: str, line: int, value: str) -> str | None:
    role = schema.USER_ROLES_LOWER.get(value.lower())
    if role is None:
        ctx.error(
            file,
            line,
            "role",
            f'"{value}" is not a role we know: write student, teacher, aide, administrator, '
            "principal, parent or guardian.",
        )
    return role


def _read_11_role(ctx: PlanContext, row: Row, value: str, orgs: str, roles: set[str]) -> bool:
    ok = True
    for part in split_ids(value):
        role = _map_role(ctx, schema.USERS, row.line, part)
        if role is None:
            ok = False
        else:
            roles.add(role)
    org_ids = split_ids(orgs)
    if not any(org in ctx.orgs_allowed for org in org_ids):
        ok = False
        ctx.error(schema.USERS, row.line, "orgSourcedIds", _foreign(ctx, ", ".join(org_ids)))
    return ok


def _read_roles(ctx: PlanContext, people: dict[str, Person]) -> None:
    name = schema.ROLES
    table = ctx.tables.get(name)
    if table is not None:
        get_user, get_role = table.getter("userSourcedId"), table.getter("role")
        get_type, get_org = table.getter("roleType"), table.getter("orgSourcedId")
        for row in ctx.rows(name):
            user_id = get_user(row.values)
            person = people.get(user_id)
            known = person is not None or (
                not ctx.is_bulk(schema.USERS) and user_id in ctx.state.user_by_sourced_id
            )
            ok = True
            if not known and (schema.USERS, user_id) not in ctx.broken:
                ok = False
                ctx.error(
                    name, row.line, "userSourcedId", f"This person ({user_id}) is not in users.csv."
                )
            if get_type(row.values) not in ("primary", "secondary"):
                ok = False
                ctx.error(name, row.line, "roleType", 'roleType must be "primary" or "secondary".')
            org = get_org(row.values)
            if org not in ctx.orgs_allowed:
                ok = False
                ctx.error(name, row.line, "orgSourcedId", _foreign(ctx, org))
            role = _map_role(ctx, name, row.line, get_role(row.values))
            if not ok or role is None or person is None:
                continue
            (person.roles_removed if row.deleted else person.roles).add(role)
    for person in people.values():
        if person.roles:
            continue
        exists = person.sourced_id in ctx.state.user_by_sourced_id
        if ctx.is_bulk(name) or not exists:
            ctx.error(
                schema.USERS,
                person.line,
                "role",
                "This person has no role in roles.csv: give them student, teacher, "
                "administrator or guardian.",
            )
            ctx.broken.add((schema.USERS, person.sourced_id))


def _match(ctx: PlanContext, people: dict[str, Person]) -> None:
    """Find each person's account: by sourcedId in this school, then by email."""
    state = ctx.state
    claimed: dict[int, int] = {}
    for person in list(people.values()):
        if (schema.USERS, person.sourced_id) in ctx.broken:
            del people[person.sourced_id]
            continue
        user_id = state.user_by_sourced_id.get(person.sourced_id)
        holder = state.users_by_email.get(person.email)
        message = ""
        if user_id is None and holder is not None:
            other = state.sourced_id_of_user(holder.pk)
            if other and other != person.sourced_id:
                message = (
                    f"The email address {person.email} belongs to another person of this school "
                    f"(sourcedId {other})."
                )
            user_id = holder.pk
        elif user_id is not None and holder is not None and holder.pk != user_id:
            message = f"The email address {person.email} is already used by another account."
        if not message and user_id is not None and user_id in claimed:
            message = f"This is the same person as on line {claimed[user_id]}."
        if message:
            ctx.error(schema.USERS, person.line, "email", message)
            ctx.broken.add((schema.USERS, person.sourced_id))
            del people[person.sourced_id]
            continue
        if user_id is not None:
            claimed[user_id] = person.line
        person.user_id = user_id
        ctx.users[person.sourced_id] = user_id if user_id is not None else person.sourced_id


def _plan_person(ctx: PlanContext, person: Person) -> None:
    state = ctx.state
    counts = ctx.counts["users"]
    ref: Ref = person.user_id if person.user_id is not None else person.sourced_id
    memberships = state.memberships.get(person.user_id, []) if person.user_id is not None else []
    changed = False
    if person.user_id is None:
        ctx.changes.users.append(
            UserChange(person.sourced_id, person.email, person.given_name, person.family_name)
        )
    else:
        user = state.users[person.user_id]
        wanted = (person.email, person.given_name, person.family_name)
        if not user.shared and (user.email, user.given_name, user.family_name) != wanted:
            changed = True
            ctx.changes.users.append(UserChange(person.sourced_id, *wanted, pk=user.pk))
    by_role = {membership.role: membership for membership in memberships}
    for role in sorted(person.roles):
        membership = by_role.get(role)
        if membership is None:
            changed = True
            ctx.changes.memberships.append(
                MembershipChange(ref, role, person.sourced_id, person.enabled)
            )
        elif membership.sourced_id != person.sourced_id or (
            (membership.deactivated_at is None) != person.enabled
        ):
            changed = True
            ctx.changes.memberships.append(
                MembershipChange(ref, role, person.sourced_id, person.enabled, pk=membership.pk)
            )
    full = ctx.version == "1.1" or ctx.is_bulk(schema.ROLES)
    for membership in memberships:
        if membership.role in person.roles or membership.deactivated_at is not None:
            continue
        if (full and membership.sourced_id) or membership.role in person.roles_removed:
            changed = True
            ctx.changes.memberships_deactivated.append(membership.pk)
    if not memberships:
        counts.create += 1
        ctx.changed(person.sourced_id)
    elif changed:
        counts.update += 1
        ctx.changed(person.sourced_id)
    else:
        counts.unchanged += 1


def _deactivate(
    ctx: PlanContext, user_id: int, sourced_id: str, enrollments: list[EnrollmentRecord]
) -> None:
    """A person leaves the school: imported roles off, their enrollments here removed."""
    memberships = ctx.state.memberships.get(user_id, [])
    leaving = [m for m in memberships if m.sourced_id and m.deactivated_at is None]
    if not leaving:
        return
    ctx.changes.memberships_deactivated.extend(m.pk for m in leaving)
    staying = any(m.deactivated_at is None and not m.sourced_id for m in memberships)
    for enrollment in enrollments:
        if enrollment.sourced_id or not staying:
            ctx.changes.enrollments_removed.add(enrollment.pk)
    ctx.counts["users"].deactivate += 1
    ctx.changed(sourced_id)


def _roles_now(ctx: PlanContext, people: dict[str, Person], sourced_id: str) -> set[str]:
    person = people.get(sourced_id)
    if person is not None:
        return person.roles
    user_id = ctx.state.user_by_sourced_id.get(sourced_id)
    memberships: list[MembershipRecord] = ctx.state.memberships.get(user_id or 0, [])
    return {m.role for m in memberships if m.deactivated_at is None}


def _plan_guardians(ctx: PlanContext, people: dict[str, Person]) -> None:
    state = ctx.state
    counts = ctx.counts["guardians"]
    wanted: dict[tuple[Ref, Ref], None] = {}
    for person in people.values():
        for agent in person.agents:
            agent_ref = ctx.users.get(agent)
            if agent_ref is None and not ctx.is_bulk(schema.USERS):
                agent_ref = state.user_by_sourced_id.get(agent)
            if agent_ref is None:
                if (schema.USERS, agent) not in ctx.broken:
                    ctx.error(
                        schema.USERS,
                        person.line,
                        "agentSourcedIds",
                        f"This person's parent or guardian ({agent}) is not in users.csv.",
                    )
                continue
            mine, theirs = person.roles, _roles_now(ctx, people, agent)
            me = ctx.users[person.sourced_id]
            if Role.PUPIL in mine and Role.GUARDIAN in theirs:
                wanted[(agent_ref, me)] = None
            if Role.GUARDIAN in mine and Role.PUPIL in theirs:
                wanted[(me, agent_ref)] = None
    for guardian, pupil in wanted:
        if guardian == pupil:
            continue
        if (guardian, pupil) in state.guardianships:
            counts.unchanged += 1
        else:
            counts.create += 1
            ctx.changes.guardianships.append((guardian, pupil))
    if not ctx.is_bulk(schema.USERS):
        return
    imported = defaultdict(bool)
    for user_id, memberships in state.memberships.items():
        imported[user_id] = any(m.sourced_id for m in memberships)
    for (guardian, pupil), pk in state.guardianships.items():
        if imported[guardian] and imported[pupil] and (guardian, pupil) not in wanted:
            counts.deactivate += 1
            ctx.changes.guardianships_removed.append(pk)
