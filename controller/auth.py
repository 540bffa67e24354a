"""Users and bearer tokens: a token is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import ROLES, Token, User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: str) -> User:
    """Add a user with one of ROLES (admin, operator, viewer, technician)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    user = User(name=name, role=role)
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
    """The user a live (not revoked) token belongs to, else None."""
    if not token:
        return None
    return session.scalars(select(User).join(Token).where(Token.sha256 == token_hash(token),
                                                          Token.revoked.is_(False))).first()
