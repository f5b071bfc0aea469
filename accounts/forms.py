"""Forms keyed by email: the login form and the Django admin's user forms."""

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.contrib.auth.forms import UserChangeForm as BaseUserChangeForm
from django.utils.translation import gettext_lazy as _

from accounts.models import User


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )

    error_messages: dict[str, Any] = {  # noqa: RUF012 -- Django reads it as a class attribute
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "That email and password do not match an account. Check both and try again."
        ),
    }


class UserCreationForm(BaseUserCreationForm[User]):
    """The Django admin's "add user" form, keyed by email instead of a username."""

    class Meta:
        model = User
        fields = ("email", "given_name", "family_name")


class UserChangeForm(BaseUserChangeForm[User]):
    class Meta:
        model = User
        fields = ("email", "given_name", "family_name")
