"""The admin API's errors, each with the HTTP status it is answered with."""

from __future__ import annotations


class AdminError(Exception):
    """A refusal of an admin request."""

    status = 400


class Unauthorized(AdminError):
    """No admin token, or one that is unknown, malformed or revoked."""

    status = 401


class Forbidden(AdminError):
    """The token is valid but may not do this (it manages one account only)."""

    status = 403


class Invalid(AdminError):
    """The request is well-formed but asks for something that cannot be (a bad reference)."""

    status = 422
