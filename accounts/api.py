"""API tokens: exchange an email and password for a token, and revoke it.

One token per user (DRF's `authtoken`): asking again returns the same token until it is revoked.
Accounts imports no other app, so `config.urls` mounts these views under `/api/v1/auth/`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User


def api_token_issue(*, user: User) -> Token:
    """The user's API token, made on first request: one per user, until revoked."""
    token, _created = Token.objects.get_or_create(user=user)
    return token


def api_token_revoke(*, user: User) -> None:
    """Forget the user's token: every client using it gets 401 from now on."""
    Token.objects.filter(user=user).delete()


class TokenRequestSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.EmailField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(
            self.context["request"], username=attrs["email"], password=attrs["password"]
        )
        if user is None:
            # One message for an unknown email, a wrong password and a deactivated account.
            raise serializers.ValidationError(
                _("Unable to sign in with these credentials."), code="authorization"
            )
        attrs["user"] = user
        return attrs


class TokenSerializer(serializers.Serializer[Token]):
    token = serializers.CharField(source="key", read_only=True)


class TokenView(APIView):
    """POST: your API token for your email and password. DELETE: revoke your token."""

    authentication_classes = (TokenAuthentication, SessionAuthentication)

    def get_permissions(self) -> list[Any]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def perform_authentication(self, request: Request) -> None:
        # Exchanging credentials needs no prior session (so no CSRF check) and must not trip over
        # a stale token header; DRF authenticates lazily, so skipping this skips it entirely.
        if request.method != "POST":
            super().perform_authentication(request)

    @extend_schema(
        request=TokenRequestSerializer, responses=TokenSerializer, auth=[], operation_id="token"
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        token = api_token_issue(user=serializer.validated_data["user"])
        return Response(TokenSerializer(token).data)

    @extend_schema(request=None, responses={204: None}, operation_id="token_revoke")
    def delete(self, request: Request) -> Response:
        if not isinstance(request.user, User):
            raise NotAuthenticated
        api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [path("token/", TokenView.as_view(), name="api-token")]
