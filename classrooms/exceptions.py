"""Errors the classrooms app raises across its interfaces."""

from django.http import Http404


class NotFound(Http404):
    """The row is missing, or it is outside the user's school or roster: the two look the same.

    It is an Http404, so a view or API view that lets it through answers 404, never "exists but
    forbidden".
    """
