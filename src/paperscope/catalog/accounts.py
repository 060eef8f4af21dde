"""Accounts storage (server mode): users, login sessions, API tokens, invitations, password resets
and login attempts. The only SQL of accounts; :mod:`paperscope.accounts` holds the rules.

Secrets are never stored: session ids, API tokens, invitation codes and reset tokens are kept as
their SHA-256 (they are long random strings, so a plain hash is enough), passwords as argon2id
hashes. Times are ISO-8601 UTC text, like the rest of the catalogue.

The tables are declared on the catalogue's shared ``metadata`` and created by migration 0003.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    delete,
    func,
    inspect,
    select,
    update,
)

from paperscope.catalog.schema import metadata

users = Table(
    "users", metadata,
    Column("id", Text, primary_key=True),                    # what per-user tables store as user_id
    Column("username", Text, nullable=False),                # as typed at sign-up
    Column("username_key", Text, nullable=False, unique=True),  # lower-case: names are case-insensitive
    Column("email", Text),
    Column("email_key", Text, unique=True),                  # lower-case; several users may have none
    Column("password_hash", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", Text, nullable=False),
    Column("last_login_at", Text),
    Column("password_changed_at", Text),
)

login_sessions = Table(
    "login_sessions", metadata,
    Column("id_hash", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("last_seen_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("ip", Text),
    Column("user_agent", Text),
)
Index("ix_login_sessions_user", login_sessions.c.user_id)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),                  # the first characters, to recognise it in a list
    Column("created_at", Text, nullable=False),
    Column("last_used_at", Text),
)
Index("ix_api_tokens_user", api_tokens.c.user_id)

invitations = Table(
    "invitations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code_hash", Text, nullable=False, unique=True),
    Column("email", Text),
    Column("make_admin", Boolean, nullable=False, default=False),
    Column("created_by", Text),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("used_by", Text),
    Column("used_at", Text),
)

password_resets = Table(
    "password_resets", metadata,
    Column("token_hash", Text, primary_key=True),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("used_at", Text),
)

login_attempts = Table(
    "login_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username_key", Text, nullable=False),
    Column("ip", Text, nullable=False),
    Column("at", Text, nullable=False),
    Column("success", Boolean, nullable=False),
)
Index("ix_login_attempts_user_at", login_attempts.c.username_key, login_attempts.c.at)
Index("ix_login_attempts_ip_at", login_attempts.c.ip, login_attempts.c.at)

ACCOUNT_TABLES = (users, login_sessions, api_tokens, invitations, password_resets, login_attempts)


# ------------------------------------------------------------------------------------------ users
def insert_user(engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(users.insert().values(**row))


def user_by(engine, **where: Any) -> dict[str, Any] | None:
    """One user by a column (``id``, ``username_key`` or ``email_key``)."""
    (column, value), = where.items()
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c[column] == value)).mappings().first()
        return dict(row) if row else None


def list_users(engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(users).order_by(users.c.username_key)).mappings()]


def count_users(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(users)).scalar_one()


def update_user(engine, user_id: str, **values: Any) -> int:
    with engine.begin() as conn:
        return conn.execute(update(users).where(users.c.id == user_id).values(**values)).rowcount or 0


# ------------------------------------------------------------------------------------------ sessions
def insert_session(engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(login_sessions.insert().values(**row))


def session_with_user(engine, id_hash: str, now: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(session, user) for a live session of an active user, else None."""
    query = (
        select(login_sessions, *[c.label(f"u_{c.name}") for c in users.columns])
        .join(users, users.c.id == login_sessions.c.user_id)
        .where(login_sessions.c.id_hash == id_hash, login_sessions.c.expires_at > now, users.c.is_active.is_(True))
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    session = {c.name: row[c.name] for c in login_sessions.columns}
    user = {c.name: row[f"u_{c.name}"] for c in users.columns}
    return session, user


def touch_session(engine, id_hash: str, last_seen_at: str, expires_at: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(login_sessions).where(login_sessions.c.id_hash == id_hash)
                     .values(last_seen_at=last_seen_at, expires_at=expires_at))


def delete_sessions(engine, *, id_hash: str | None = None, user_id: str | None = None,
                    keep: str | None = None, expired_before: str | None = None) -> int:
    cond = None
    if id_hash is not None:
        cond = login_sessions.c.id_hash == id_hash
    elif user_id is not None:
        cond = login_sessions.c.user_id == user_id
        if keep is not None:
            cond = cond & (login_sessions.c.id_hash != keep)
    elif expired_before is not None:
        cond = login_sessions.c.expires_at <= expired_before
    if cond is None:
        raise ValueError("say which sessions to delete")
    with engine.begin() as conn:
        return conn.execute(delete(login_sessions).where(cond)).rowcount or 0


def list_sessions(engine, user_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(login_sessions).where(login_sessions.c.user_id == user_id).order_by(login_sessions.c.last_seen_at.desc())
        return [dict(r) for r in conn.execute(query).mappings()]


# ------------------------------------------------------------------------------------------ API tokens
def insert_token(engine, row: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return conn.execute(api_tokens.insert().values(**row)).inserted_primary_key[0]


def token_with_user(engine, token_hash: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    query = (
        select(api_tokens, *[c.label(f"u_{c.name}") for c in users.columns])
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == token_hash, users.c.is_active.is_(True))
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return {c.name: row[c.name] for c in api_tokens.columns}, {c.name: row[f"u_{c.name}"] for c in users.columns}


def touch_token(engine, token_id: int, now: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def list_tokens(engine, user_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.prefix, api_tokens.c.created_at,
                       api_tokens.c.last_used_at).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def delete_token(engine, user_id: str, token_id: int) -> int:
    """Revoke one of ``user_id``'s tokens (never another user's)."""
    with engine.begin() as conn:
        return conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)).rowcount or 0


# ------------------------------------------------------------------------------------------ invitations
def insert_invitation(engine, row: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return conn.execute(invitations.insert().values(**row)).inserted_primary_key[0]


def usable_invitation(engine, code_hash: str, now: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(invitations).where(
            invitations.c.code_hash == code_hash, invitations.c.used_at.is_(None), invitations.c.expires_at > now,
        )).mappings().first()
        return dict(row) if row else None


def claim_invitation(conn, invitation_id: int, user_id: str, now: str) -> bool:
    """Mark an invitation used, inside the caller's transaction; False when someone used it first."""
    result = conn.execute(update(invitations).where(invitations.c.id == invitation_id, invitations.c.used_at.is_(None))
                          .values(used_by=user_id, used_at=now))
    return bool(result.rowcount)


def list_invitations(engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(invitations.c.id, invitations.c.email, invitations.c.make_admin, invitations.c.created_by,
                       invitations.c.created_at, invitations.c.expires_at, invitations.c.used_by, invitations.c.used_at)
        return [dict(r) for r in conn.execute(query.order_by(invitations.c.id.desc())).mappings()]


def create_user_with_invitation(engine, row: dict[str, Any], invitation_id: int | None, now: str) -> bool:
    """Insert the user and claim the invitation in one transaction (an invitation makes one account)."""
    with engine.begin() as conn:
        conn.execute(users.insert().values(**row))
        if invitation_id is not None and not claim_invitation(conn, invitation_id, row["id"], now):
            conn.rollback()
            return False
    return True


# ------------------------------------------------------------------------------------------ password resets
def insert_reset(engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(password_resets.insert().values(**row))


def use_reset(engine, token_hash: str, now: str, new_hash: str) -> str | None:
    """Spend a live reset token: set the new password, end the user's sessions. Returns the user id."""
    with engine.begin() as conn:
        row = conn.execute(select(password_resets).where(
            password_resets.c.token_hash == token_hash, password_resets.c.used_at.is_(None),
            password_resets.c.expires_at > now)).mappings().first()
        if row is None:
            return None
        claimed = conn.execute(update(password_resets).where(
            password_resets.c.token_hash == token_hash, password_resets.c.used_at.is_(None)).values(used_at=now)).rowcount
        if not claimed:
            return None
        user_id = row["user_id"]
        conn.execute(update(users).where(users.c.id == user_id).values(password_hash=new_hash, password_changed_at=now))
        conn.execute(delete(login_sessions).where(login_sessions.c.user_id == user_id))
        # every other outstanding reset link of this user dies with this one
        conn.execute(update(password_resets).where(password_resets.c.user_id == user_id, password_resets.c.used_at.is_(None))
                     .values(used_at=now))
        return user_id


def live_reset(engine, token_hash: str, now: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(password_resets.c.token_hash).where(
            password_resets.c.token_hash == token_hash, password_resets.c.used_at.is_(None),
            password_resets.c.expires_at > now)).first() is not None


# ------------------------------------------------------------------------------------------ login attempts
def record_attempt(engine, username_key: str, ip: str, at: str, success: bool) -> None:
    with engine.begin() as conn:
        conn.execute(login_attempts.insert().values(username_key=username_key, ip=ip, at=at, success=success))


def recent_failures(engine, window_start: str, *, username_key: str | None = None,
                    ip: str | None = None) -> tuple[int, str | None]:
    """(failed logins for a name (from one address, when given), or from an address, since
    ``window_start``, and the oldest of them).

    For a name, only failures after its last successful login count: signing in forgives them.
    """
    a = login_attempts.c
    with engine.connect() as conn:
        after = a.at >= window_start
        if username_key is not None:
            who = a.username_key == username_key
            if ip is not None:
                who = who & (a.ip == ip)
            last_ok = conn.execute(select(func.max(a.at)).where(who, a.success.is_(True), after)).scalar()
            if last_ok:
                after = a.at > last_ok
        else:
            who = a.ip == ip
        n, oldest = conn.execute(select(func.count(), func.min(a.at)).where(who, a.success.is_(False), after)).one()
        return int(n), oldest


def prune_attempts(engine, before: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(login_attempts).where(login_attempts.c.at < before))


def delete_user_everywhere(engine, user_id: str) -> dict[str, int]:
    """Delete a user and every row of theirs in any per-user table (any declared table with a
    ``user_id`` column: agenda, library, feedback, feeds, digests, sessions, tokens, ...).

    Children before parents (the metadata's dependency order, reversed), in one transaction.
    """
    from paperscope.catalog.schema import metadata as shared

    removed: dict[str, int] = {}
    with engine.begin() as conn:
        present = set(inspect(conn).get_table_names())
        for table in reversed(shared.sorted_tables):
            if "user_id" in table.c and table.name in present:
                n = conn.execute(delete(table).where(table.c.user_id == user_id)).rowcount or 0
                if n:
                    removed[table.name] = n
        name = conn.execute(select(users.c.username_key).where(users.c.id == user_id)).scalar()
        if name is not None:
            conn.execute(delete(login_attempts).where(login_attempts.c.username_key == name))
        removed["users"] = conn.execute(delete(users).where(users.c.id == user_id)).rowcount or 0
    return removed
