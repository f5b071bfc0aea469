"""Users, their roles in schools, and the guardians of pupils.

A user logs in with an email address. What a user may do comes from `Membership` rows: one per
school and role, so a teacher who also runs the school holds two rows. Schools are rows of the
`classrooms` app; this app refers to them by a lazy reference and imports nothing from it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The school model lives in `classrooms`; a string reference keeps this app free of its imports.
SCHOOL_MODEL = "classrooms.School"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in: pupil, teacher, guardian, school admin or operator."""

    email = models.EmailField(_("email address"), unique=True)
    given_name = models.CharField(_("given name"), max_length=150)
    family_name = models.CharField(_("family name"), max_length=150, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("operator"),
        default=False,
        help_text=_("Operators may use the Django admin. School admins need not be operators."),
    )
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["given_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ("family_name", "given_name", "email")
        constraints = (models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),)

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """The name the roster gives: what classmates and teachers see in a lesson."""
        full = f"{self.given_name} {self.family_name}".strip()
        return full or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.given_name or self.email


class Role(models.TextChoices):
    ADMIN = "admin", _("School admin")
    TEACHER = "teacher", _("Teacher")
    PUPIL = "pupil", _("Pupil")
    GUARDIAN = "guardian", _("Guardian")


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        """Memberships that grant something: not deactivated, of an active user."""
        return self.filter(deactivated_at__isnull=True, user__is_active=True)


class Membership(models.Model):
    """A user's role in one school; a user holds one row per role they have there.

    People with history are never deleted: a school deactivates them (`deactivated_at`), which
    takes away every right the membership gave, and can reactivate them later. `sourced_id` is
    the person's id in the school's information system (OneRoster `sourcedId`), the same on each
    of their roles in that school.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    school = models.ForeignKey(SCHOOL_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)
    sourced_id = models.CharField(_("OneRoster sourcedId"), max_length=255, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("school membership")
        verbose_name_plural = _("school memberships")
        constraints = (
            models.UniqueConstraint(fields=("user", "school", "role"), name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        )
        indexes = (
            models.Index(fields=("school", "role")),
            models.Index(fields=("school", "sourced_id")),
        )

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} @ {self.school_id}"


class Invitation(models.Model):
    """A link that lets a person set their password and log in for the first time.

    Only a hash of the token is stored: the link is shown once, in the email. A newer invitation
    for the same person and school replaces older ones (`revoked_at`).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    school = models.ForeignKey(SCHOOL_MODEL, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        indexes = (models.Index(fields=("school", "user")),)

    def __str__(self) -> str:
        return f"invitation of {self.user_id} to {self.school_id}"


class CalendarFeed(models.Model):
    """A user's personal iCalendar feed: a secret URL a calendar app polls without logging in.

    The token is kept in clear because the week page shows the feed's URL; replacing it (revoke)
    makes the old URL answer 404.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self) -> str:
        return f"calendar feed of {self.user_id}"


class Guardianship(models.Model):
    """A guardian follows a pupil of the same school (read-only: the pupil's timetable)."""

    school = models.ForeignKey(SCHOOL_MODEL, on_delete=models.CASCADE, related_name="+")
    guardian = models.ForeignKey(User, on_delete=models.CASCADE, related_name="wards")
    pupil = models.ForeignKey(User, on_delete=models.CASCADE, related_name="guardians")

    class Meta:
        verbose_name = _("guardianship")
        verbose_name_plural = _("guardianships")
        constraints = (
            models.UniqueConstraint(
                fields=("school", "guardian", "pupil"), name="guardianship_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(guardian=models.F("pupil")), name="guardianship_not_self"
            ),
        )

    def __str__(self) -> str:
        return f"{self.guardian_id} guards {self.pupil_id}"
