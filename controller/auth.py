"""Who is asking: bearer tokens for machines, passwords and browser sessions for people.

A token is shown once; only its SHA-256 is stored. Passwords are hashed with argon2id (argon2-cffi's
defaults). A browser session is a random cookie whose SHA-256 is stored beside a CSRF token that
every form must send back. A disabled user's tokens, sessions and password all stop working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from controller.models import ROLES, Token, User, WebSession

SESSION_S = 12 * 3600  # a working day: sign in again the next morning
PASSWORD_MIN, PASSWORD_MAX = 8, 256
_hasher = PasswordHasher()
# verified when the name is unknown, so a wrong name costs the time a wrong password does
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def password_problem(password: object) -> str | None:
    """Why this cannot be a password, or None."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
    if "\x00" in password:
        return "may not contain NUL"
    return None


def hash_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    return _hasher.hash(password)


def create_user(session: Session, name: str, role: str, password: str | None = None) -> User:
    """Add a user with one of ROLES (admin, operator, viewer, technician); no password: API tokens only."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    user = User(name=name, role=role, password_hash=hash_password(password) if password is not None else None)
    session.add(user)
    session.flush()
    return user


def create_token(session: Session, user: User, label: str = "") -> str:
    """Issue a bearer token for `user`; the returned text is the only copy."""
    token = secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, sha256=token_hash(token), label=label[:64]))
    session.flush()
    return token


def user_for_token(session: Session, token: str | None) -> User | None:
    """The enabled user a live (not revoked) token belongs to, else None."""
    if not token:
        return None
    return session.scalars(select(User).join(Token).where(Token.sha256 == token_hash(token),
                                                          Token.revoked.is_(False), User.disabled.is_(False))).first()


def user_for_password(session: Session, name: str, password: str) -> User | None:
    """The enabled user with this name and password, else None (same work whichever part is wrong)."""
    user = session.scalars(select(User).where(User.name == name)).first() if len(name) <= 64 else None
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.password_hash or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def open_session(session: Session, user: User) -> tuple[str, str]:
    """A new browser session for `user`: (cookie value, CSRF token). Expired sessions are swept."""
    now = int(time.time())
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(sha256=token_hash(cookie), user_id=user.id, csrf=csrf, created_at=now,
                           expires_at=now + SESSION_S))
    session.flush()
    return cookie, csrf


def session_for_cookie(session: Session, cookie: str | None) -> tuple[User, WebSession] | None:
    """The enabled user and live session this cookie opens, else None."""
    if not cookie or len(cookie) > 128:
        return None
    row = session.execute(select(User, WebSession).join(WebSession, WebSession.user_id == User.id)
                          .where(WebSession.sha256 == token_hash(cookie), WebSession.expires_at >= int(time.time()),
                                 User.disabled.is_(False))).first()
    return (row[0], row[1]) if row else None


def csrf_matches(web_session: WebSession, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(web_session.csrf.encode(), sent.encode())


def close_session(session: Session, cookie: str | None) -> None:
    if cookie and len(cookie) <= 128:
        session.execute(delete(WebSession).where(WebSession.sha256 == token_hash(cookie)))
