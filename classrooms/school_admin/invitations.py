"""Invitations: the link that lets a person set their password and log in for the first time.

The token is 32 random bytes, URL-safe, shown once in the email; only its sha256 is stored, so a
copy of the database logs nobody in. A link works for `HOMEROOM_INVITATION_DAYS` days and once;
a new invitation to the same person withdraws the older ones. Mail goes through Django's email
backend after the transaction commits, so an invitation rolled back sends nothing.

Only people with no usable password are invited: an invitation sets a password, and an account
that already has one (perhaps in another school) is not this school's to take over.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import Invitation, Membership, User
from classrooms.audit import AuditEntry, audit_record, audit_record_many
from classrooms.models import AuditAction, School
from classrooms.school_admin.selectors import no_password
from classrooms.school_admin.services import person_label

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{40,64}")


def new_token() -> str:
    """256 random bits, URL-safe: 43 characters."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LinkState(enum.StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED = "used"


@dataclass(frozen=True)
class InvitationLink:
    """What an invitation link leads to. `invitation` is set only for a valid link."""

    state: LinkState
    invitation: Invitation | None = None


class InvitationUnusableError(Exception):
    def __init__(self, state: LinkState) -> None:
        super().__init__(state)
        self.state = state


def _state(invitation: Invitation | None, now: datetime) -> LinkState:
    if invitation is None:
        return LinkState.UNKNOWN
    if invitation.accepted_at is not None:
        return LinkState.USED
    if invitation.revoked_at is not None:
        return LinkState.REVOKED
    if invitation.expires_at <= now:
        return LinkState.EXPIRED
    # Someone deactivated since, in the school or by an operator, can no longer use it.
    if not invitation.user.is_active or not invitation.member:  # type: ignore[attr-defined]
        return LinkState.REVOKED
    return LinkState.VALID


def _find(token: str, *, lock: bool = False) -> Invitation | None:
    if not TOKEN_RE.fullmatch(token):
        return None
    invitations = Invitation.objects.select_related("user", "school").annotate(
        # The person must still hold a role in the school that invited them.
        member=Exists(
            Membership.objects.active().filter(
                user=OuterRef("user_id"), school=OuterRef("school_id")
            )
        )
    )
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    return invitations.filter(token_hash=token_hash(token)).first()


def invitation_link(*, token: str, now: datetime) -> InvitationLink:
    """The state of the link that carries `token` (one query)."""
    invitation = _find(token)
    state = _state(invitation, now)
    return InvitationLink(state=state, invitation=invitation if state == LinkState.VALID else None)


def invitation_expiry(*, school: School, expires_at: datetime) -> str:
    return formats.date_format(expires_at.astimezone(school.tzinfo), "j F Y, H:i")


def _message(*, school: School, user: User, link: str, expires_at: datetime) -> tuple[str, str]:
    subject = _("Your Homeroom account at %(school)s") % {"school": school.name}
    body = _(
        "Hello %(name)s,\n\n"
        "%(school)s invites you to Homeroom, where your timetable and your live lessons are.\n\n"
        "Choose your password with this link. It works once, until %(expires)s:\n"
        "%(link)s\n\n"
        "If the link no longer works, ask the school for a new one. If you did not expect this "
        "email, you can ignore it."
    ) % {
        "name": user.given_name or user.email,
        "school": school.name,
        "expires": invitation_expiry(school=school, expires_at=expires_at),
        "link": link,
    }
    return subject, body


def _issue(*, school: School, actor: User, users: list[User], base_url: str) -> int:
    """Withdraw the people's standing invitations, make new ones, record and mail them."""
    now = timezone.now()
    expires_at = now + timedelta(days=settings.HOMEROOM_INVITATION_DAYS)
    Invitation.objects.filter(
        school=school, user__in=users, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    tokens = {user.pk: new_token() for user in users}
    Invitation.objects.bulk_create(
        [
            Invitation(
                user=user,
                school=school,
                token_hash=token_hash(tokens[user.pk]),
                created_by=actor,
                created_at=now,
                expires_at=expires_at,
            )
            for user in users
        ]
    )
    audit_record_many(
        school_id=school.pk,
        actor_id=actor.pk,
        entries=[
            AuditEntry(
                action=AuditAction.INVITATION_SENT,
                target_type="user",
                target_id=str(user.pk),
                target_label=person_label(user),
                details={"email": user.email, "expires_at": expires_at.isoformat()},
            )
            for user in users
        ],
    )
    root = base_url.rstrip("/")
    mails = []
    for user in users:
        link = root + reverse("classrooms:school_admin:invitation", args=[tokens[user.pk]])
        subject, body = _message(school=school, user=user, link=link, expires_at=expires_at)
        mails.append((subject, body, None, [user.email]))
    transaction.on_commit(partial(send_mass_mail, tuple(mails), fail_silently=False))
    return len(users)


@transaction.atomic
def invitation_send(*, school: School, actor: User, user: User, base_url: str) -> None:
    """Invite one person of the school who has no password yet; older links stop working.

    `base_url` is the site's root (scheme and host) the link starts with.
    """
    if not (
        user.is_active and Membership.objects.active().filter(user=user, school=school).exists()
    ):
        raise ValidationError(_("Only an active member of this school can be invited."))
    if not User.objects.filter(no_password(), pk=user.pk).exists():
        raise ValidationError(
            _("%(name)s already has a password and logs in with it.") % {"name": user.display_name}
        )
    _issue(school=school, actor=actor, users=[user], base_url=base_url)


@transaction.atomic
def invitations_send_missing(*, school: School, actor: User, base_url: str) -> int:
    """Invite every active member of the school who has no password and no link that still
    works (a roster import creates people so); return how many were invited.

    Pressing it twice invites nobody twice: a link still valid is left alone, an expired one is
    replaced.
    """
    now = timezone.now()
    standing = Invitation.objects.filter(
        school=school,
        user=OuterRef("pk"),
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    )
    users = list(
        User.objects.filter(
            no_password(),
            is_active=True,
            id__in=Membership.objects.active().filter(school=school).values("user_id"),
        )
        .exclude(Exists(standing))
        .order_by("id")
    )
    if not users:
        return 0
    return _issue(school=school, actor=actor, users=users, base_url=base_url)


@transaction.atomic
def invitation_accept(*, token: str, password: str) -> User:
    """Set the invited person's password from a valid link and use the link up.

    Raises `InvitationUnusableError` when the link is unknown, expired, withdrawn or used, and
    `ValidationError` when the password fails the site's password validators. The caller logs the
    person in.
    """
    invitation = _find(token, lock=True)
    state = _state(invitation, timezone.now())
    if invitation is None or state != LinkState.VALID:
        raise InvitationUnusableError(state)
    user = invitation.user
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_record(
        school_id=invitation.school_id,
        actor_id=user.pk,
        action=AuditAction.INVITATION_ACCEPTED,
        target_type="user",
        target_id=user.pk,
        target_label=person_label(user),
    )
    return user
