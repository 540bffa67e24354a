"""People and machines: users with a role and maybe a password, their API tokens. Disabling a user stops
their sign-in, their browser sessions and every token at once (controller.auth checks `disabled`)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from controller.auth import create_token, create_user, hash_password, password_problem
from controller.models import ROLES, Token, User, WebSession
from controller.services.errors import Conflict, FieldError, NotFound

NAME_MAX = 64


def _user(s: Session, name: str) -> User:
    user = s.scalars(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound("name", f"no user {name!r}")
    return user


def add(s: Session, name: str, role: str, password: str | None) -> tuple[User, str]:
    """A new user and their first API token (the only copy)."""
    if not name or len(name) > NAME_MAX or "\x00" in name or name != name.strip():
        raise FieldError("name", f"must be 1 to {NAME_MAX} characters without surrounding spaces")
    if role not in ROLES:
        raise FieldError("role", f"must be one of {', '.join(ROLES)}")
    if password is not None and password_problem(password):
        raise FieldError("password", password_problem(password))
    if s.scalars(select(User.id).where(User.name == name)).first() is not None:
        raise Conflict("name", f"a user {name!r} exists already")
    user = create_user(s, name, role, password)
    return user, create_token(s, user, "first")


def set_password(s: Session, name: str, password: str) -> User:
    """A new password; the user's open browser sessions end."""
    problem = password_problem(password)
    if problem:
        raise FieldError("password", problem)
    user = _user(s, name)
    user.password_hash = hash_password(password)
    s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


def set_disabled(s: Session, name: str, disabled: bool = True) -> User:
    """Disable (or enable again) a user: sessions end now; tokens and password stop working while disabled."""
    user = _user(s, name)
    user.disabled = disabled
    if disabled:
        s.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


def list_users(s: Session) -> list[dict]:
    live: dict[int, int] = {}
    for uid, _ in s.execute(select(Token.user_id, Token.id).where(Token.revoked.is_(False))):
        live[uid] = live.get(uid, 0) + 1
    return [{"name": u.name, "role": u.role, "password": bool(u.password_hash), "disabled": u.disabled,
             "tokens": live.get(u.id, 0), "created_at": u.created_at}
            for u in s.scalars(select(User).order_by(User.name))]


def list_tokens(s: Session, name: str | None = None) -> list[dict]:
    """Every token (never its text: only its id, label and owner), newest first."""
    q = select(Token, User.name).join(User, User.id == Token.user_id)
    if name is not None:
        q = q.where(User.id == _user(s, name).id)
    return [{"id": t.id, "user": uname, "label": t.label, "created_at": t.created_at, "revoked": t.revoked}
            for t, uname in s.execute(q.order_by(Token.id.desc()))]


def revoke_token(s: Session, token_id: int) -> Token:
    token = s.get(Token, token_id) if 1 <= token_id < 2**31 else None
    if token is None:
        raise NotFound("token_id", f"no token {token_id}")
    token.revoked = True
    return token
