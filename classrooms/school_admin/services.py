"""Writes on a school's people: who they are, their roles, their deactivation, their guardians.
Classes, rosters, terms and courses are in `class_services`, invitations in `invitations`.

Each service takes keyword arguments, runs in one transaction and records its audit event in it,
so a change and its record stand or fall together. A broken rule raises Django's
`ValidationError` with a message for the admin (keyed by form field where there is one). The
forms check the same rules first, for friendly errors, but the services are what hold them: a
form can be bypassed and a request forged, so every id is looked up again inside the school.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_stubs_ext import StrOrPromise

from accounts.models import Guardianship, Invitation, Membership, Role, User
from classrooms.audit import AuditEntry, audit_record, audit_record_many
from classrooms.models import (
    AuditAction,
    School,
)
from classrooms.school_admin.selectors import is_managed_elsewhere, members_with_role


def person_label(user: User) -> str:
    return f"{user.display_name} <{user.email}>"


def save_unique(row: models.Model, *, field: str, message: StrOrPromise) -> None:
    """Save, turning a unique constraint lost to a concurrent request into a form error."""
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as error:
        raise ValidationError({field: message}) from error


def _roles(roles: Collection[str]) -> set[str]:
    chosen = set(roles)
    if not chosen:
        raise ValidationError({"roles": _("Choose at least one role.")})
    if not chosen <= set(Role.values):
        raise ValidationError({"roles": _("Choose roles from the list.")})
    return chosen


# --- People ---------------------------------------------------------------------------------------


@transaction.atomic
def person_create(
    *,
    school: School,
    actor: User,
    email: str,
    given_name: str,
    family_name: str,
    roles: Collection[str],
) -> User:
    """Add a person to the school with `roles`; they log in once invited.

    An account that already exists with this email (a teacher who also works in another school)
    joins this school as it is: its name stays its own. Someone already in this school is refused.
    """
    chosen = _roles(roles)
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    existing = user is not None
    if user is not None:
        if Membership.objects.filter(user=user, school=school).exists():
            raise ValidationError(
                {"email": _("Someone in this school already has this email address.")}
            )
    else:
        user = User(email=email, given_name=given_name.strip(), family_name=family_name.strip())
        user.set_unusable_password()
        save_unique(user, field="email", message=_("Someone already has this email address."))
    Membership.objects.bulk_create(
        [Membership(user=user, school=school, role=role) for role in sorted(chosen)]
    )
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        action=AuditAction.PERSON_CREATED,
        target_type="user",
        target_id=user.pk,
        target_label=person_label(user),
        details={"roles": sorted(chosen), "existing_account": existing},
    )
    return user


def _update_identity(
    *, school: School, actor: User, user: User, email: str, given_name: str, family_name: str
) -> None:
    wanted = {
        "email": User.objects.normalize_email(email).strip().lower(),
        "given_name": given_name.strip(),
        "family_name": family_name.strip(),
    }
    changed = {
        field: [getattr(user, field), value]
        for field, value in wanted.items()
        if getattr(user, field) != value
    }
    if not changed:
        return
    if is_managed_elsewhere(school=school, user=user):
        raise ValidationError(
            _("This account is also used outside this school: its email and name stay as they are.")
        )
    if "email" in changed and (
        User.objects.filter(email__iexact=wanted["email"]).exclude(pk=user.pk).exists()
    ):
        raise ValidationError({"email": _("Someone already has this email address.")})
    for field, value in wanted.items():
        setattr(user, field, value)
    save_unique(user, field="email", message=_("Someone already has this email address."))
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        action=AuditAction.PERSON_UPDATED,
        target_type="user",
        target_id=user.pk,
        target_label=person_label(user),
        details={"changed": changed},
    )


def _update_roles(*, school: School, actor: User, user: User, roles: set[str]) -> None:
    held = {
        m.role: m for m in Membership.objects.select_for_update().filter(user=user, school=school)
    }
    added = sorted(roles - held.keys())
    removed = sorted(held.keys() - roles)
    if user.pk == actor.pk and Role.ADMIN in removed:
        raise ValidationError({"roles": _("You cannot take away your own admin role.")})
    # A role added to a deactivated person is deactivated too: adding a role reactivates nobody.
    deactivated = bool(held) and all(m.deactivated_at is not None for m in held.values())
    sourced_id = next((m.sourced_id for m in held.values() if m.sourced_id), "")
    Membership.objects.bulk_create(
        [
            Membership(
                user=user,
                school=school,
                role=role,
                sourced_id=sourced_id,
                deactivated_at=timezone.now() if deactivated else None,
            )
            for role in added
        ]
    )
    Membership.objects.filter(pk__in=[held[role].pk for role in removed]).delete()
    audit_record_many(
        school_id=school.pk,
        actor_id=actor.pk,
        entries=[
            AuditEntry(
                action=action,
                target_type="user",
                target_id=str(user.pk),
                target_label=person_label(user),
                details={"role": role},
            )
            for action, changed in (
                (AuditAction.ROLE_ADDED, added),
                (AuditAction.ROLE_REMOVED, removed),
            )
            for role in changed
        ],
    )


@transaction.atomic
def person_update(
    *,
    school: School,
    actor: User,
    user: User,
    email: str,
    given_name: str,
    family_name: str,
    roles: Collection[str],
) -> None:
    """Change a person's email, names and roles in the school.

    Each role added or removed is its own audit event. Removing a role ends that membership (the
    audit log keeps its history); a person keeps at least one role, since deactivation, not
    deletion, is how someone leaves. An account another school also uses keeps its email and name.
    """
    chosen = _roles(roles)
    if not Membership.objects.filter(user=user, school=school).exists():
        raise ValidationError(_("This person is not in this school."))
    _update_identity(
        school=school,
        actor=actor,
        user=user,
        email=email,
        given_name=given_name,
        family_name=family_name,
    )
    _update_roles(school=school, actor=actor, user=user, roles=chosen)


@transaction.atomic
def person_deactivate(*, school: School, actor: User, user: User) -> None:
    """Take away everything the school gave a person, keeping their history.

    Every membership in the school is marked deactivated, so the access selectors grant nothing
    (classes, lessons, the lesson room, the guardian's view) and open invitations are withdrawn.
    Enrollments and guardianships stay, for the record and for a reactivation.
    """
    if user.pk == actor.pk:
        raise ValidationError(_("You cannot deactivate yourself."))
    now = timezone.now()
    roles = sorted(
        Membership.objects.filter(
            user=user, school=school, deactivated_at__isnull=True
        ).values_list("role", flat=True)
    )
    if not roles:
        raise ValidationError(_("This person is already deactivated."))
    Membership.objects.filter(user=user, school=school, deactivated_at__isnull=True).update(
        deactivated_at=now
    )
    Invitation.objects.filter(
        user=user, school=school, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        action=AuditAction.PERSON_DEACTIVATED,
        target_type="user",
        target_id=user.pk,
        target_label=person_label(user),
        details={"roles": roles},
    )


@transaction.atomic
def person_reactivate(*, school: School, actor: User, user: User) -> None:
    """Give a deactivated person back every role they held in the school."""
    roles = sorted(
        Membership.objects.filter(
            user=user, school=school, deactivated_at__isnull=False
        ).values_list("role", flat=True)
    )
    if not roles:
        raise ValidationError(_("This person is not deactivated."))
    Membership.objects.filter(user=user, school=school).update(deactivated_at=None)
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        action=AuditAction.PERSON_REACTIVATED,
        target_type="user",
        target_id=user.pk,
        target_label=person_label(user),
        details={"roles": roles},
    )


# --- Guardians ------------------------------------------------------------------------------------


def _guardian_and_pupil(*, school: School, guardian_id: int, pupil_id: int) -> tuple[User, User]:
    guardian = members_with_role(school=school, role=Role.GUARDIAN).filter(id=guardian_id).first()
    if guardian is None:
        raise ValidationError(_("Only an active guardian of this school can follow a pupil."))
    pupil = members_with_role(school=school, role=Role.PUPIL).filter(id=pupil_id).first()
    if pupil is None:
        raise ValidationError({"pupil": _("Choose an active pupil of this school.")})
    return guardian, pupil


def _guardianship_entry(action: AuditAction, guardian: User, pupil: User) -> dict[str, Any]:
    return {
        "action": action,
        "target_type": "user",
        "target_id": guardian.pk,
        "target_label": person_label(guardian),
        "details": {"pupil_id": pupil.pk, "pupil": person_label(pupil)},
    }


@transaction.atomic
def guardian_link(*, school: School, actor: User, guardian_id: int, pupil_id: int) -> Guardianship:
    """Let a guardian follow a pupil's timetable; both must hold their roles in this school."""
    guardian, pupil = _guardian_and_pupil(school=school, guardian_id=guardian_id, pupil_id=pupil_id)
    if guardian.pk == pupil.pk:
        raise ValidationError({"pupil": _("Nobody is their own guardian.")})
    if Guardianship.objects.filter(school=school, guardian=guardian, pupil=pupil).exists():
        raise ValidationError({"pupil": _("This guardian already follows this pupil.")})
    link = Guardianship(school=school, guardian=guardian, pupil=pupil)
    save_unique(link, field="pupil", message=_("This guardian already follows this pupil."))
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        **_guardianship_entry(AuditAction.GUARDIAN_LINKED, guardian, pupil),
    )
    return link


@transaction.atomic
def guardian_unlink(*, school: School, actor: User, guardian_id: int, pupil_id: int) -> None:
    """Stop a guardian following a pupil, whatever their roles are now."""
    link = (
        Guardianship.objects.filter(school=school, guardian_id=guardian_id, pupil_id=pupil_id)
        .select_related("guardian", "pupil")
        .first()
    )
    if link is None:
        raise ValidationError(_("This guardian does not follow this pupil."))
    link.delete()
    audit_record(
        school_id=school.pk,
        actor_id=actor.pk,
        **_guardianship_entry(AuditAction.GUARDIAN_UNLINKED, link.guardian, link.pupil),
    )
