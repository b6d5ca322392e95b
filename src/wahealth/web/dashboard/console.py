"""Signing in and out, the session on every page, CSRF on every form, and the language.

Every page but the sign-in form needs a session; every POST needs the session's form
token. A session whose token was revoked (or whose account was disabled) stops at the
next request after the directory's short lookup cache; a session signed out stops at
once (its id is recorded until the cookie would expire).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wahealth.core.directory import Directory
from wahealth.core.errors import Unauthenticated
from wahealth.core.ports import Principal
from wahealth.domain.languages import Language, language_of, negotiate
from wahealth.httputil import BodyTooLarge, read_body
from wahealth.web.dashboard.ports import SignOuts, Spaces
from wahealth.web.dashboard.render import LANGUAGE_NAMES, Pages
from wahealth.web.dashboard.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    Session,
    SessionCodec,
    csrf_matches,
    new_csrf,
)

FORM_MAX_BYTES = 8192
FORM_MAX_FIELDS = 16
HOME = "/dashboard"


class BadRequest(Exception):
    """A parameter the page cannot use; shown to the user as a 400 page."""


class NotFound(Exception):
    """Nothing of this account's by that name; shown as a 404 page."""


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: whose (the credential's principal: its label is who acts), in
    which language, and its form fields (for POST)."""

    session: Session
    account: str
    language: Language
    space_ids: tuple[str, ...]
    principal: Principal
    form: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request, Visit], Awaitable[Response]]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path only (never another site)."""
    if not target or not target.startswith(HOME) or "//" in target or "\\" in target:
        return HOME
    if len(target) > 2000 or any(ord(ch) < 0x21 for ch in target):
        return HOME
    return target


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each); BadRequest when it is not one."""
    try:
        body = await read_body(request, FORM_MAX_BYTES)
    except BodyTooLarge as exc:
        raise BadRequest("The form is too large.") from exc
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("The form could not be read.") from exc
    return {name: values[0] for name, values in fields.items()}


class Console:
    """What every page shares: the session, the account's spaces, the templates."""

    def __init__(
        self,
        directory: Directory,
        spaces: Spaces,
        codec: SessionCodec,
        pages: Pages,
        sign_outs: SignOuts,
    ) -> None:
        self.directory = directory
        self.spaces = spaces
        self.codec = codec
        self.pages = pages
        self.sign_outs = sign_outs

    # --- pages -------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        visit: Visit | None,
        name: str,
        context: dict[str, Any],
        status_code: int = 200,
    ) -> Response:
        base: dict[str, Any] = {
            "account": visit.account if visit else None,
            "csrf": visit.session.csrf if visit else None,
            "language": (visit.language if visit else Language.EN).value,
            "languages": [(lang.value, label) for lang, label in LANGUAGE_NAMES.items()],
            "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "space_ids": visit.space_ids if visit else (),
            "nav": "",
        }
        return self.pages.render(name, {**base, **context}, status_code)

    def problem(
        self, request: Request, visit: Visit | None, status_code: int, message: str
    ) -> Response:
        titles = {400: "Bad request", 403: "Forbidden", 404: "Not found"}
        context = {"title": titles.get(status_code, "Error"), "message": message}
        return self.page(request, visit, "problem.html", context, status_code)

    # --- sessions ----------------------------------------------------------------------

    async def visit(self, request: Request) -> Visit | None:
        """The signed-in visit, or None (no cookie, altered, expired, signed out or revoked)."""
        session = self.codec.open(request.cookies.get(SESSION_COOKIE))
        if session is None or await self.sign_outs.signed_out(session.id):
            return None
        try:
            principal = await self.directory.graph_principal_of_digest(session.token_digest)
        except Unauthenticated:
            return None
        if principal.account != session.account:
            return None
        language = language_of(session.language) if session.language else None
        spaces = await self.spaces.list_spaces(principal.account)
        return Visit(
            session,
            principal.account,
            language or negotiate(request.headers.get("accept-language")),
            tuple(space.id for space in spaces),
            principal,
        )

    def signed_in(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint that needs a session (and, for POST, the session's form token)."""

        async def endpoint(request: Request) -> Response:
            visit = await self.visit(request)
            if visit is None:
                back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = "/dashboard/login"
                if request.method == "GET" and back != HOME:
                    target += "?" + urlencode({"next": back})
                response = RedirectResponse(target, status_code=303)
                if SESSION_COOKIE in request.cookies:
                    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
                return response
            try:
                if request.method == "POST":
                    form = await read_form(request)
                    if not csrf_matches(visit.session.csrf, form.get("csrf")):
                        return self.problem(
                            request,
                            visit,
                            403,
                            "This form has expired. Reload the page and try again.",
                        )
                    visit = replace(visit, form=form)
                return await handler(request, visit)
            except BadRequest as exc:
                return self.problem(request, visit, 400, str(exc))
            except NotFound as exc:
                return self.problem(request, visit, 404, str(exc))

        return endpoint

    def set_session(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.codec.seal(session),
            max_age=self.codec.session_seconds,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )

    # --- sign in, sign out, language ---------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if await self.visit(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return self._login(request, request.query_params.get("next"))

    def _login(
        self, request: Request, next_path: str | None, message: str = "", status_code: int = 200
    ) -> Response:
        csrf = new_csrf()
        context = {
            "title": "Sign in",
            "message": message,
            "login_csrf": csrf,
            "next": safe_next(next_path),
        }
        response = self.page(request, None, "login.html", context, status_code)
        response.set_cookie(
            LOGIN_COOKIE,
            self.codec.seal_login(csrf),
            max_age=LOGIN_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response

    async def login(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except BadRequest as exc:
            return self._login(request, None, str(exc), 400)
        next_path = form.get("next")
        expected = self.codec.open_login(request.cookies.get(LOGIN_COOKIE))
        if expected is None or not csrf_matches(expected, form.get("csrf")):
            return self._login(request, next_path, "The sign-in form expired; try again.", 403)
        token = form.get("token", "").strip()
        if not token:
            return self._login(request, next_path, "Enter a Graph token.", 400)
        try:
            principal = await self.directory.graph_principal(token)
        except Unauthenticated:
            return self._login(request, next_path, "That token is not valid (or was revoked).", 401)
        session = self.codec.start(principal.account, self.directory.token_digest(token), None)
        response = RedirectResponse(safe_next(next_path), status_code=303)
        self.set_session(request, response, session)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    async def logout(self, request: Request, visit: Visit) -> Response:
        expires = datetime.fromtimestamp(visit.session.expires_at, UTC)
        await self.sign_outs.sign_out(visit.session.id, expires)
        response = RedirectResponse("/dashboard/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    async def choose_language(self, request: Request, visit: Visit) -> Response:
        chosen = language_of(visit.form.get("lang"))
        if chosen is None:
            raise BadRequest("Choose English, Indonesian or Chinese.")
        response = RedirectResponse(safe_next(visit.form.get("next")), status_code=303)
        self.set_session(request, response, visit.session.with_language(chosen.value))
        return response
