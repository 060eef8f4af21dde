"""Accounts for server mode: sign-up (open, by invitation, or closed), login, sessions, password
change and reset by email, API tokens, admins, and rate-limited logins.

The laptop has no accounts: one user, ``"local"``. A server (``paperscope serve --accounts``, or any
PostgreSQL catalogue) has users, each with their own agenda, library and feeds; a user's id is what
per-user tables store as ``user_id``.

Rules kept here, SQL in :mod:`paperscope.catalog.accounts`:

- passwords are hashed with argon2id (argon2-cffi's defaults, re-hashed at login when they change);
- session ids, API tokens, invitation codes and reset tokens are 256-bit random strings, stored as
  SHA-256 hashes only, so a copy of the database opens no account;
- a name that failed :data:`MAX_FAILURES_PER_NAME` logins from one address within :data:`FAILURE_WINDOW`
  is refused there until the window passes (from anywhere after :data:`MAX_FAILURES_PER_NAME_ANYWHERE`;
  an address after :data:`MAX_FAILURES_PER_ADDRESS`); wrong names cost the same time as wrong
  passwords, and the answer never says which it was;
- a password reset never says whether an address has an account; its link works once, for
  :data:`RESET_LIFETIME`, and ends every session of the user; so does a password change (but the
  session that made it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

from paperscope.catalog import accounts as db

log = logging.getLogger("paperscope.accounts")

LOCAL_USER = "local"
SIGNUP_MODES = ("open", "invite", "closed")
SIGNUP_META = "accounts:signup"
DEFAULT_SIGNUP = "invite"

SESSION_LIFETIME = timedelta(days=14)        # sliding: each visit (at most hourly) extends it
SESSION_TOUCH_EVERY = timedelta(hours=1)
RESET_LIFETIME = timedelta(hours=2)
INVITATION_LIFETIME = timedelta(days=14)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5          # from one address: a guesser is stopped at once ...
MAX_FAILURES_PER_NAME_ANYWHERE = 50  # ... and one spread over many addresses soon, while a stranger
MAX_FAILURES_PER_ADDRESS = 30      # cannot lock someone out from their own address with a few tries
MIN_PASSWORD = 10
MAX_PASSWORD = 1024                          # argon2 hashes any length; a megabyte "password" is a DoS
TOKEN_PREFIX = "pst_"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(ValueError):
    """Something the user can fix; the message says what (and is safe to show)."""


class LoginRefused(AccountError):
    """Wrong name or password (never says which)."""


class RateLimited(AccountError):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str | None
    is_admin: bool
    is_active: bool = True
    created_at: str = ""
    last_login_at: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "User":
        return cls(id=row["id"], username=row["username"], email=row.get("email"), is_admin=bool(row["is_admin"]),
                   is_active=bool(row.get("is_active", True)), created_at=row.get("created_at") or "",
                   last_login_at=row.get("last_login_at"))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "email": self.email, "is_admin": self.is_admin,
                "is_active": self.is_active, "created_at": self.created_at, "last_login_at": self.last_login_at}


@dataclass(frozen=True)
class Session:
    token: str            # the cookie value (only ever in the cookie, never stored)
    csrf_token: str
    user: User


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime, precise: bool = False) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds" if precise else "seconds")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def username_key(name: str) -> str:
    return (name or "").strip().lower()


# ------------------------------------------------------------------------------------------- email
@dataclass(frozen=True)
class SmtpSettings:
    """Where mail goes: ``PAPERSCOPE_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_FROM`` and
    ``_SECURITY`` (``starttls``, ``ssl`` or ``none``; by default ``ssl`` on port 465, ``starttls`` when a
    user is set, else ``none``)."""

    host: str | None
    port: int = 25
    user: str | None = None
    password: str | None = None
    sender: str = ""
    security: str = "none"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "SmtpSettings":
        env = os.environ if env is None else env
        host = env.get("PAPERSCOPE_SMTP_HOST") or None
        port = int(env.get("PAPERSCOPE_SMTP_PORT") or (465 if env.get("PAPERSCOPE_SMTP_SECURITY") == "ssl" else 25))
        user = env.get("PAPERSCOPE_SMTP_USER") or None
        default_security = "ssl" if port == 465 else ("starttls" if user else "none")
        security = (env.get("PAPERSCOPE_SMTP_SECURITY") or default_security).lower()
        if security not in ("starttls", "ssl", "none"):
            raise AccountError("PAPERSCOPE_SMTP_SECURITY is starttls, ssl or none")
        sender = env.get("PAPERSCOPE_SMTP_FROM") or f"paperscope@{socket.getfqdn()}"
        return cls(host=host, port=port, user=user, password=env.get("PAPERSCOPE_SMTP_PASSWORD") or None,
                   sender=sender, security=security)

    @property
    def configured(self) -> bool:
        return bool(self.host)

    def send(self, to: str, subject: str, body: str) -> None:
        if not self.host:
            raise AccountError("this server cannot send email (PAPERSCOPE_SMTP_HOST is not set); ask an administrator")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        context = ssl.create_default_context()
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=20, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=20)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.user:
                client.login(self.user, self.password or "")
            client.send_message(message)


def password_hasher():
    """argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 3 passes over 64 MiB), or
    ``$PAPERSCOPE_ARGON2`` = ``time_cost,memory_kib,parallelism`` (lighter for tests, heavier for a
    big server). Hashes keep their parameters, so changing them re-hashes each password at its next
    sign-in."""
    from argon2 import PasswordHasher, Type

    custom = os.environ.get("PAPERSCOPE_ARGON2")
    if not custom:
        return PasswordHasher(type=Type.ID)
    try:
        time_cost, memory_kib, parallelism = (int(x) for x in custom.split(","))
    except ValueError:
        raise AccountError("PAPERSCOPE_ARGON2 is time_cost,memory_kib,parallelism, e.g. 3,65536,4") from None
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


# ------------------------------------------------------------------------------------------- service
class Accounts:
    """The accounts of one catalogue. Cheap to make; holds no state but its settings."""

    def __init__(self, catalog, smtp: SmtpSettings | None = None, base_url: str | None = None, hasher=None):
        self.catalog = catalog
        self.engine = catalog.engine
        self.smtp = smtp if smtp is not None else SmtpSettings.from_env()
        self.base_url = (base_url or os.environ.get("PAPERSCOPE_BASE_URL") or "").rstrip("/") or None
        self.hasher = hasher or password_hasher()
        self._dummy_hash: str | None = None

    # ---------------------------------------------------------------- settings
    def signup_mode(self) -> str:
        mode = self.catalog.get_meta(SIGNUP_META)
        return mode if mode in SIGNUP_MODES else DEFAULT_SIGNUP

    def set_signup_mode(self, mode: str) -> None:
        if mode not in SIGNUP_MODES:
            raise AccountError(f"sign-up is one of {', '.join(SIGNUP_MODES)}")
        self.catalog.set_meta(SIGNUP_META, mode)

    # ---------------------------------------------------------------- users
    def _check_password(self, password: str, username: str = "") -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"choose a password of at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise AccountError(f"a password has at most {MAX_PASSWORD} characters")
        if username and username_key(password) == username_key(username):
            raise AccountError("the password must not be the user name")

    def _new_user_row(self, username: str, password: str, email: str | None, is_admin: bool) -> dict[str, Any]:
        key = username_key(username)
        if not _USERNAME.match(key):
            raise AccountError("a user name has 2 to 32 characters: letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit")
        if key == LOCAL_USER:
            raise AccountError("that user name is reserved")
        email = (email or "").strip() or None
        if email and not _EMAIL.match(email):
            raise AccountError("that does not look like an email address")
        self._check_password(password, username)
        if db.user_by(self.engine, username_key=key):
            raise AccountError("that user name is taken")
        if email and db.user_by(self.engine, email_key=email.lower()):
            raise AccountError("an account with that email address exists; sign in or reset its password")
        now = _iso(_now())
        return {"id": "u_" + uuid.uuid4().hex[:16], "username": username.strip(), "username_key": key,
                "email": email, "email_key": email.lower() if email else None,
                "password_hash": self.hasher.hash(password), "is_admin": bool(is_admin), "is_active": True,
                "created_at": now, "password_changed_at": now}

    def create_user(self, username: str, password: str, email: str | None = None, is_admin: bool = False) -> User:
        """Make an account directly (the admin's `paperscope users add`)."""
        row = self._new_user_row(username, password, email, is_admin)
        try:
            db.insert_user(self.engine, row)
        except Exception as exc:  # a concurrent sign-up took the name between the check and the insert
            if db.user_by(self.engine, username_key=row["username_key"]):
                raise AccountError("that user name is taken") from exc
            raise
        return User.from_row(row)

    def sign_up(self, username: str, password: str, email: str | None = None, invitation: str | None = None) -> User:
        """Sign-up from the web: allowed when sign-up is open, or with a live invitation."""
        mode = self.signup_mode()
        invite = db.usable_invitation(self.engine, secret_hash(invitation), _iso(_now())) if invitation else None
        if invitation and invite is None:
            raise AccountError("this invitation has expired or has been used; ask for a new one")
        if invite is None and mode != "open":
            raise AccountError("sign-up on this server is by invitation only" if mode == "invite"
                               else "sign-up on this server is closed; ask an administrator for an account")
        if invite and invite.get("email") and (email or "").strip().lower() != invite["email"].lower():
            raise AccountError("this invitation is for another email address")
        row = self._new_user_row(username, password, email, bool(invite and invite["make_admin"]))
        now = _iso(_now())
        try:
            ok = db.create_user_with_invitation(self.engine, row, invite["id"] if invite else None, now)
        except Exception as exc:
            if db.user_by(self.engine, username_key=row["username_key"]):
                raise AccountError("that user name is taken") from exc
            raise
        if not ok:
            raise AccountError("this invitation has just been used; ask for a new one")
        return User.from_row(row)

    def user(self, user_id: str) -> User | None:
        row = db.user_by(self.engine, id=user_id)
        return User.from_row(row) if row else None

    def user_named(self, username: str) -> User | None:
        row = db.user_by(self.engine, username_key=username_key(username))
        return User.from_row(row) if row else None

    def list_users(self) -> list[User]:
        return [User.from_row(r) for r in db.list_users(self.engine)]

    def set_admin(self, username: str, is_admin: bool = True) -> User:
        user = self.require_user(username)
        if not is_admin and user.is_admin and sum(u.is_admin and u.is_active for u in self.list_users()) <= 1:
            raise AccountError("this is the last administrator; make another one first")
        db.update_user(self.engine, user.id, is_admin=bool(is_admin))
        return self.user(user.id)

    def set_active(self, username: str, active: bool) -> User:
        user = self.require_user(username)
        if not active and user.is_admin and sum(u.is_admin and u.is_active for u in self.list_users()) <= 1:
            raise AccountError("this is the last administrator; make another one first")
        db.update_user(self.engine, user.id, is_active=bool(active))
        if not active:
            db.delete_sessions(self.engine, user_id=user.id)
        return self.user(user.id)

    def delete_user(self, username: str) -> dict[str, int]:
        """Delete an account and everything of theirs (agenda, library, feeds, sessions, tokens)."""
        user = self.require_user(username)
        if user.is_admin and sum(u.is_admin and u.is_active for u in self.list_users()) <= 1:
            raise AccountError("this is the last administrator; make another one first")
        import paperscope.catalog.agenda  # noqa: F401  (declare the per-user tables this code knows)
        try:
            import paperscope.catalog.library  # noqa: F401
        except ImportError:
            pass
        return db.delete_user_everywhere(self.engine, user.id)

    def require_user(self, username: str) -> User:
        user = self.user_named(username)
        if user is None:
            raise AccountError(f"no user named {username!r}")
        return user

    # ---------------------------------------------------------------- login
    def _verify(self, stored_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _spend_time_like_a_check(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self._verify(self._dummy_hash, password)

    def check_rate(self, name_key: str, ip: str) -> None:
        now = _now()
        window = _iso(now - FAILURE_WINDOW, precise=True)
        for label, kwargs, limit in (("this account", {"username_key": name_key, "ip": ip}, MAX_FAILURES_PER_NAME),
                                     ("this account", {"username_key": name_key}, MAX_FAILURES_PER_NAME_ANYWHERE),
                                     ("your address", {"ip": ip}, MAX_FAILURES_PER_ADDRESS)):
            failures, oldest = db.recent_failures(self.engine, window, **kwargs)
            if failures >= limit:
                retry = max(1, int((_parse(oldest) + FAILURE_WINDOW - now).total_seconds()) + 1)
                raise RateLimited(f"too many failed sign-ins for {label}; try again in {max(1, retry // 60)} minute(s)",
                                  retry)

    def authenticate(self, username: str, password: str, ip: str = "") -> User:
        """The user with this name (or email) and password; raises LoginRefused or RateLimited."""
        key = username_key(username)
        self.check_rate(key, ip)
        row = db.user_by(self.engine, username_key=key) or (db.user_by(self.engine, email_key=key) if "@" in key else None)
        ok = False
        if row is None or len(password) > MAX_PASSWORD:
            self._spend_time_like_a_check(password[:MAX_PASSWORD])
        else:
            ok = self._verify(row["password_hash"], password) and bool(row["is_active"])
        now = _now()
        db.record_attempt(self.engine, key, ip, _iso(now, precise=True), ok)
        if not ok:
            if secrets.randbelow(50) == 0:
                db.prune_attempts(self.engine, _iso(now - timedelta(days=1), precise=True))
            raise LoginRefused("wrong user name or password")
        if self.hasher.check_needs_rehash(row["password_hash"]):
            db.update_user(self.engine, row["id"], password_hash=self.hasher.hash(password))
        db.update_user(self.engine, row["id"], last_login_at=_iso(now))
        return User.from_row(row)

    # ---------------------------------------------------------------- sessions
    def start_session(self, user: User, ip: str = "", user_agent: str = "") -> Session:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_hex(24)
        now = _now()
        db.insert_session(self.engine, {
            "id_hash": secret_hash(token), "user_id": user.id, "csrf_token": csrf, "created_at": _iso(now),
            "last_seen_at": _iso(now), "expires_at": _iso(now + SESSION_LIFETIME), "ip": ip[:64],
            "user_agent": user_agent[:300]})
        if secrets.randbelow(20) == 0:
            db.delete_sessions(self.engine, expired_before=_iso(now))
        return Session(token=token, csrf_token=csrf, user=user)

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie value (extended when used), or None."""
        if not token or len(token) > 200:
            return None
        now = _now()
        found = db.session_with_user(self.engine, secret_hash(token), _iso(now))
        if found is None:
            return None
        session, user_row = found
        if _parse(session["last_seen_at"]) + SESSION_TOUCH_EVERY < now:
            db.touch_session(self.engine, session["id_hash"], _iso(now), _iso(now + SESSION_LIFETIME))
        return Session(token=token, csrf_token=session["csrf_token"], user=User.from_row(user_row))

    def end_session(self, token: str | None) -> None:
        if token:
            db.delete_sessions(self.engine, id_hash=secret_hash(token))

    def sessions_of(self, user: User) -> list[dict[str, Any]]:
        return [{k: v for k, v in s.items() if k not in ("id_hash", "csrf_token")} for s in db.list_sessions(self.engine, user.id)]

    # ---------------------------------------------------------------- passwords
    def change_password(self, user: User, current: str, new: str, keep_session: str | None = None) -> None:
        row = db.user_by(self.engine, id=user.id)
        if row is None or not self._verify(row["password_hash"], current):
            raise AccountError("the current password is not right")
        self._check_password(new, user.username)
        db.update_user(self.engine, user.id, password_hash=self.hasher.hash(new), password_changed_at=_iso(_now()))
        db.delete_sessions(self.engine, user_id=user.id, keep=secret_hash(keep_session) if keep_session else None)

    def set_password(self, username: str, new: str) -> User:
        """The admin sets a password (`paperscope users passwd`); every session of the user ends."""
        user = self.require_user(username)
        self._check_password(new, user.username)
        db.update_user(self.engine, user.id, password_hash=self.hasher.hash(new), password_changed_at=_iso(_now()))
        db.delete_sessions(self.engine, user_id=user.id)
        return user

    def reset_link(self, user: User, base_url: str | None = None) -> str:
        """A one-time password-reset link for ``user`` (mailed by :meth:`request_password_reset`)."""
        token = secrets.token_urlsafe(32)
        now = _now()
        db.insert_reset(self.engine, {"token_hash": secret_hash(token), "user_id": user.id, "created_at": _iso(now),
                                      "expires_at": _iso(now + RESET_LIFETIME)})
        return f"{self._base(base_url)}/reset/{token}"

    def request_password_reset(self, name_or_email: str, base_url: str | None = None) -> bool:
        """Mail a reset link to the account's address, if there is such an account with an address.

        Returns whether a mail was sent; the web page says the same thing either way.
        """
        key = username_key(name_or_email)
        row = db.user_by(self.engine, email_key=key) if "@" in key else db.user_by(self.engine, username_key=key)
        if row is None or not row.get("email") or not row["is_active"]:
            return False
        user = User.from_row(row)
        link = self.reset_link(user, base_url)
        minutes = int(RESET_LIFETIME.total_seconds() // 60)
        self.smtp.send(user.email, "Reset your paperscope password", (
            f"Hello {user.username},\n\nsomeone (hopefully you) asked to reset the password of your paperscope "
            f"account. Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
            "If it was not you, ignore this mail: your password stays as it is.\n"))
        return True

    def reset_is_live(self, token: str) -> bool:
        return bool(token) and db.live_reset(self.engine, secret_hash(token), _iso(_now()))

    def reset_password(self, token: str, new: str) -> User:
        self._check_password(new)
        user_id = db.use_reset(self.engine, secret_hash(token), _iso(_now()), self.hasher.hash(new))
        if user_id is None:
            raise AccountError("this reset link has expired or has been used; ask for a new one")
        return self.user(user_id)

    # ---------------------------------------------------------------- invitations
    def invite(self, created_by: User | None = None, email: str | None = None, make_admin: bool = False,
               base_url: str | None = None, send: bool = True) -> str:
        """An invitation link (one account, :data:`INVITATION_LIFETIME`), mailed when an address is given
        and email is set up. Returns the link."""
        email = (email or "").strip() or None
        if email and not _EMAIL.match(email):
            raise AccountError("that does not look like an email address")
        code = secrets.token_urlsafe(32)
        now = _now()
        db.insert_invitation(self.engine, {
            "code_hash": secret_hash(code), "email": email, "make_admin": bool(make_admin),
            "created_by": created_by.id if created_by else None, "created_at": _iso(now),
            "expires_at": _iso(now + INVITATION_LIFETIME)})
        link = f"{self._base(base_url)}/signup?invitation={code}"
        if email and send and self.smtp.configured:
            who = f" by {created_by.username}" if created_by else ""
            self.smtp.send(email, "You are invited to paperscope", (
                f"Hello,\n\nyou have been invited{who} to a paperscope server. Create your account here "
                f"(the link works once, for {INVITATION_LIFETIME.days} days):\n\n{link}\n"))
        return link

    def invitations(self) -> list[dict[str, Any]]:
        return db.list_invitations(self.engine)

    def invitation_is_live(self, code: str) -> bool:
        return bool(code) and db.usable_invitation(self.engine, secret_hash(code), _iso(_now())) is not None

    # ---------------------------------------------------------------- API tokens
    def create_token(self, user: User, name: str) -> tuple[int, str]:
        """A new API token for scripts and feed readers: (id, the token, shown once)."""
        name = " ".join((name or "").split())[:80] or "token"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = db.insert_token(self.engine, {"user_id": user.id, "name": name, "token_hash": secret_hash(token),
                                                 "prefix": token[:10], "created_at": _iso(_now())})
        return token_id, token

    def token_user(self, token: str | None) -> User | None:
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        found = db.token_with_user(self.engine, secret_hash(token))
        if found is None:
            return None
        row, user_row = found
        now = _now()
        if not row["last_used_at"] or _parse(row["last_used_at"]) + SESSION_TOUCH_EVERY < now:
            db.touch_token(self.engine, row["id"], _iso(now))
        return User.from_row(user_row)

    def tokens(self, user: User) -> list[dict[str, Any]]:
        return db.list_tokens(self.engine, user.id)

    def revoke_token(self, user: User, token_id: int) -> bool:
        return bool(db.delete_token(self.engine, user.id, token_id))

    # ---------------------------------------------------------------- helpers
    def _base(self, base_url: str | None) -> str:
        base = (self.base_url or base_url or "").rstrip("/")
        if not base:
            raise AccountError("set PAPERSCOPE_BASE_URL (the address users open, e.g. https://papers.example.org) "
                               "so that links in mails point to this server")
        return base

    def user_count(self) -> int:
        return db.count_users(self.engine)
