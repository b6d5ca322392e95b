"""The dashboard's session cookie: who signed in, with which token, and the form token.

The cookie holds no token. It holds the account, the token's lookup digest (so every
request re-checks the credential: a revoked token ends its sessions within the
directory's cache time), a random session id (signing out records it, so a copy of
the cookie kept afterwards opens nothing), a random per-session CSRF token, the chosen
language and an expiry, encrypted and authenticated with Fernet under a key derived from the master
key. A cookie that was altered, forged under another key or has expired reads as no
session at all. The login form has its own short-lived cookie of the same kind holding
only a CSRF token (double submit), so a sign-in cannot be forged either.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson
from cryptography.fernet import Fernet, InvalidToken

SESSION_COOKIE = "wahealth_session"
LOGIN_COOKIE = "wahealth_login"
COOKIE_PATH = "/dashboard"
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600
MAX_COOKIE_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Session:
    account: str
    token_digest: str
    csrf: str
    language: str | None
    expires_at: int
    id: str

    def with_language(self, language: str | None) -> Session:
        return replace(self, language=language)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str, given: str | None) -> bool:
    """Whether a submitted form token is the session's (in constant time)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def _text(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


class SessionCodec:
    """Seals sessions (and login form tokens) into cookie values and opens them again."""

    def __init__(
        self,
        key: bytes,
        *,
        session_seconds: int = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 32:
            raise ValueError("a session key needs at least 32 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(key[:32]))
        self.session_seconds = session_seconds
        self._clock = clock

    def start(self, account: str, token_digest: str, language: str | None) -> Session:
        expires = int(self._clock()) + self.session_seconds
        return Session(
            account, token_digest, new_csrf(), language, expires, secrets.token_urlsafe(18)
        )

    def seal(self, session: Session) -> str:
        body = {
            "v": 2,
            "s": session.id,
            "a": session.account,
            "d": session.token_digest,
            "c": session.csrf,
            "l": session.language,
            "e": session.expires_at,
        }
        return self._seal(body)

    def open(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None when it is missing, altered or expired."""
        body = self._open(cookie, ttl=self.session_seconds)
        if body is None or body.get("v") != 2:
            return None
        session_id, account = _text(body, "s"), _text(body, "a")
        digest, csrf = _text(body, "d"), _text(body, "c")
        language, expires = body.get("l"), body.get("e")
        if session_id is None or account is None or digest is None or csrf is None:
            return None
        if not isinstance(expires, int) or expires <= self._clock():
            return None
        return Session(
            account,
            digest,
            csrf,
            language if isinstance(language, str) else None,
            expires,
            session_id,
        )

    def seal_login(self, csrf: str) -> str:
        return self._seal({"v": 1, "login": csrf})

    def open_login(self, cookie: str | None) -> str | None:
        """The login form's CSRF token from its cookie, if the cookie is ours and recent."""
        body = self._open(cookie, ttl=LOGIN_SECONDS)
        csrf = None if body is None else body.get("login")
        return csrf if isinstance(csrf, str) else None

    def _seal(self, body: dict[str, object]) -> str:
        return self._fernet.encrypt_at_time(orjson.dumps(body), int(self._clock())).decode()

    def _open(self, cookie: str | None, ttl: int) -> dict[str, object] | None:
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        try:
            raw = self._fernet.decrypt_at_time(cookie.encode("ascii"), ttl, int(self._clock()))
            body = orjson.loads(raw)
        except (InvalidToken, UnicodeEncodeError, orjson.JSONDecodeError):
            return None
        return body if isinstance(body, dict) else None
