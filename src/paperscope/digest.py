"""The digest: papers new since the last digest, ranked for your library, by email or as an Atom feed.

*New* means added to the catalogue (ingested) after the previous digest of the same user, channel and
tag (the first digest looks back ``--days``, 7 by default); papers are ranked by the recommender
(:mod:`paperscope.recommend`) for the whole library or one tag, with their reasons. A paper already
sent by email is never sent again, and a digest is recorded only once the SMTP server accepted it:
a failed send is simply tried again next time.

Email: one message, ``multipart/alternative`` with a plain-text and an HTML part. SMTP settings come,
in this order (later wins), from the ``[smtp]`` table of the config file (``$PAPERSCOPE_CONFIG`` or
``~/.config/paperscope/config.toml``), the environment, and the command line:

=========================  ========================  =====================================
config key (``[smtp]``)    environment               meaning
=========================  ========================  =====================================
``host``                   ``PAPERSCOPE_SMTP_HOST``  SMTP server
``port``                   ``PAPERSCOPE_SMTP_PORT``  587 for starttls, 465 for ssl, 25 for none
``security``               ``PAPERSCOPE_SMTP_SECURITY``  ``starttls`` (default), ``ssl`` or ``none``
``user``                   ``PAPERSCOPE_SMTP_USER``  login (no login when empty)
``password``               ``PAPERSCOPE_SMTP_PASSWORD``
``from``                   ``PAPERSCOPE_SMTP_FROM``  sender address
``to``                     ``PAPERSCOPE_DIGEST_TO``  recipient address
``base_url``               ``PAPERSCOPE_BASE_URL``   where ``paperscope serve`` is reachable (links)
``cafile``                 ``PAPERSCOPE_SMTP_CAFILE``  CA bundle to trust (a private server's certificate)
=========================  ========================  =====================================

Users: on a laptop the digest is its one user's, sent to ``to``. On a server (a catalogue with
accounts) one run makes a digest for every active user with a library (or one, ``--user NAME``), each
sent to that user's own e-mail address, each with its own "since the last digest" and its own record
of what was sent; ``to`` is never used for an account (it would send one reader's interests to another).

Atom: each user and tag has a feed at a private URL, ``<base>/feed/<token>.atom`` (the token is a
secret made on first use; revoke it to change the address). It lists the best recent papers for
that tag, with their reasons; it changes nothing (reading it is not "seeing" the papers).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from paperscope.recommend import Recommendation, RecommendError

CHANNEL_EMAIL = "email"
DEFAULT_DAYS = 7
DEFAULT_LIMIT = 20
FEED_DAYS = 30
FEED_LIMIT = 30


class DigestError(RuntimeError):
    """A digest cannot be made or sent; the message says what to fix."""


# =============================================================================================
# Settings
# =============================================================================================


@dataclass
class SmtpSettings:
    host: str | None = None
    port: int | None = None
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    sender: str | None = None
    to: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    cafile: str | None = None
    timeout: float = 30.0

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "none": 25}.get(self.security, 587)

    def public(self) -> dict[str, Any]:
        """The settings without the password (for --dry-run and logs)."""
        return {"host": self.host, "port": self.effective_port, "security": self.security, "user": self.user,
                "password": "***" if self.password else None, "from": self.sender, "to": self.to, "base_url": self.base_url}


_ENV = {"host": "PAPERSCOPE_SMTP_HOST", "port": "PAPERSCOPE_SMTP_PORT", "security": "PAPERSCOPE_SMTP_SECURITY",
        "user": "PAPERSCOPE_SMTP_USER", "password": "PAPERSCOPE_SMTP_PASSWORD", "from": "PAPERSCOPE_SMTP_FROM",
        "to": "PAPERSCOPE_DIGEST_TO", "base_url": "PAPERSCOPE_BASE_URL", "cafile": "PAPERSCOPE_SMTP_CAFILE"}


def config_path() -> Path:
    env = os.environ.get("PAPERSCOPE_CONFIG")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("paperscope")) / "config.toml"


def load_settings(overrides: dict[str, Any] | None = None, path: Path | None = None) -> SmtpSettings:
    """SMTP settings from the config file, then the environment, then ``overrides`` (None = not given)."""
    import tomllib

    values: dict[str, Any] = {}
    path = path or config_path()
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DigestError(f"cannot read the config file {path}: {exc}") from None
        values.update({k: v for k, v in (data.get("smtp") or {}).items() if v not in (None, "")})
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    values.update({k: v for k, v in (overrides or {}).items() if v not in (None, "")})
    security = str(values.get("security") or "starttls").lower()
    if security not in ("starttls", "ssl", "none"):
        raise DigestError(f"SMTP security is starttls, ssl or none (not {security!r})")
    port = values.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except ValueError:
        raise DigestError(f"SMTP port {port!r} is not a number") from None
    return SmtpSettings(host=values.get("host"), port=port, security=security, user=values.get("user"),
                        password=values.get("password"), sender=values.get("from"), to=values.get("to"),
                        base_url=str(values.get("base_url") or "http://127.0.0.1:8000").rstrip("/"),
                        cafile=values.get("cafile"))


# =============================================================================================
# Selection
# =============================================================================================


@dataclass
class Digest:
    user: str
    tag: str | None
    window_start: str | None
    window_end: str
    new_papers: int                       # papers added in the window and never sent
    items: list[Recommendation] = field(default_factory=list)
    message: str | None = None
    mode: str = "semantic"

    @property
    def paper_ids(self) -> list[str]:
        return [r.paper["id"] for r in self.items]

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "tag": self.tag, "window_start": self.window_start, "window_end": self.window_end,
                "new_papers": self.new_papers, "mode": self.mode, "message": self.message,
                "items": [r.as_dict() for r in self.items]}


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def select_digest(catalog, user: str, tag: str | None = None, limit: int = DEFAULT_LIMIT, days: int = DEFAULT_DAYS,
                  since: str | None = None, now: datetime | None = None, channel: str = CHANNEL_EMAIL) -> Digest:
    """What the next digest holds: papers added since the last one (or ``since``, or the last ``days``),
    never sent before on ``channel``, ranked for the library (or ``tag``)."""
    from paperscope.catalog import library as store
    from paperscope.recommend import _since_iso, recommend

    store.ensure_library_tables(catalog)
    now = now or datetime.now(timezone.utc)
    end = _iso(now)
    last = store.last_digest(catalog, user, channel, tag or "")
    if since:
        start = _since_iso(since)
    elif last:
        start = last["window_end"]
    else:
        start = _iso(now - timedelta(days=days))
    new_ids = store.paper_ids_added_between(catalog, start, end)
    sent = store.digested_ids(catalog, user, channel, new_ids)
    fresh = [p for p in new_ids if p not in sent]
    digest = Digest(user=user, tag=tag, window_start=start, window_end=end, new_papers=len(fresh))
    if not fresh:
        digest.message = f"no new papers since {start}"
        return digest
    result = recommend(catalog, user, tag=tag, limit=limit, candidate_ids=fresh)
    digest.items, digest.mode = result.items, result.mode
    if result.message:
        digest.message = result.message
    return digest


# =============================================================================================
# Email
# =============================================================================================


def _links(paper: dict[str, Any], base_url: str) -> tuple[str, list[tuple[str, str]]]:
    from urllib.parse import quote

    from paperscope.export import paper_links

    return f"{base_url}/paper/{quote(paper['id'], safe='')}", paper_links(paper)


def _templates():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    folder = Path(__file__).parent / "web" / "templates"
    return Environment(loader=FileSystemLoader(str(folder)), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _view(digest: Digest, base_url: str) -> list[dict[str, Any]]:
    out = []
    for n, r in enumerate(digest.items, 1):
        url, links = _links(r.paper, base_url)
        d = r.as_dict()
        d.update({"n": n, "url": url, "links": [{"label": lab, "url": u} for lab, u in links],
                  "abstract": r.paper.get("abstract") or ""})
        out.append(d)
    return out


def subject(digest: Digest) -> str:
    n = len(digest.items)
    scope = f" in “{digest.tag}”" if digest.tag else ""
    return f"paperscope: {n} new paper{'s' if n != 1 else ''} for you{scope}"


def render_text(digest: Digest, base_url: str) -> str:
    import textwrap

    lines = [subject(digest), f"Papers added since {digest.window_start[:16].replace('T', ' ')} UTC, ranked for your library"
             + (f" (tag “{digest.tag}”)" if digest.tag else "") + ".", ""]
    for item in _view(digest, base_url):
        lines.append(f"{item['n']}. {item['title']}")
        if item["authors"]:
            authors = ", ".join(item["authors"][:6]) + (f" +{len(item['authors']) - 6}" if len(item["authors"]) > 6 else "")
            lines.append(f"   {authors}" + (f" · {item['venue']}" if item["venue"] else ""))
        if item["reason"]:
            lines.extend(textwrap.wrap("Why: " + item["reason"], 96, initial_indent="   ", subsequent_indent="   "))
        lines.append(f"   {item['url']}")
        for link in item["links"][:2]:
            lines.append(f"   {link['label']}: {link['url']}")
        lines.append("")
    lines += [f"More for you: {base_url}/foryou", f"Your library: {base_url}/library", ""]
    return "\n".join(lines)


def render_html(digest: Digest, base_url: str) -> str:
    return _templates().get_template("foryou_digest_email.html").render(
        digest=digest, subject=subject(digest), items=_view(digest, base_url), base_url=base_url)


def build_message(digest: Digest, settings: SmtpSettings) -> EmailMessage:
    if not settings.to:
        raise DigestError("no recipient: pass --to ADDRESS, or set PAPERSCOPE_DIGEST_TO or `to` in [smtp] of the config file")
    msg = EmailMessage()
    msg["Subject"] = subject(digest)
    msg["From"] = settings.sender or settings.user or "paperscope@localhost"
    msg["To"] = settings.to
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain="paperscope.local")
    msg.set_content(render_text(digest, settings.base_url))
    msg.add_alternative(render_html(digest, settings.base_url), subtype="html")
    return msg


def send_message(msg: EmailMessage, settings: SmtpSettings) -> None:
    """Hand ``msg`` to the SMTP server (STARTTLS, SSL or plain; login when a user is set)."""
    if not settings.host:
        raise DigestError("no SMTP server: pass --smtp-host, or set PAPERSCOPE_SMTP_HOST or `host` in [smtp] of the config file")
    try:
        context = ssl.create_default_context(cafile=settings.cafile)
        if settings.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.effective_port, timeout=settings.timeout, context=context)
        else:
            server = smtplib.SMTP(settings.host, settings.effective_port, timeout=settings.timeout)
        with server:
            server.ehlo()
            if settings.security == "starttls":
                server.starttls(context=context)
                server.ehlo()
            if settings.user:
                server.login(settings.user, settings.password or "")
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DigestError(f"could not send through {settings.host}:{settings.effective_port} ({settings.security}): "
                          f"{exc}") from None


def send_digest(catalog, user: str, settings: SmtpSettings, tag: str | None = None, limit: int = DEFAULT_LIMIT,
                days: int = DEFAULT_DAYS, since: str | None = None, send_empty: bool = False,
                now: datetime | None = None) -> tuple[Digest, bool]:
    """Select, send and record the digest. Returns (the digest, whether a message was sent)."""
    from paperscope.catalog import library as store

    digest = select_digest(catalog, user, tag, limit, days, since, now)
    if not digest.items and not send_empty:
        return digest, False
    msg = build_message(digest, settings)
    send_message(msg, settings)
    store.record_digest(catalog, user, CHANNEL_EMAIL, tag or "", settings.to or "", digest.window_start,
                        digest.window_end, digest.paper_ids)
    store.mark_seen(catalog, user, digest.paper_ids, context="digest")
    return digest, True


# =============================================================================================
# Users: whose digests one run makes, and where each goes
# =============================================================================================


@dataclass
class Reader:
    """A user a digest is made for: the id their library is kept under, their name, their address."""

    id: str
    name: str
    email: str | None = None
    account: bool = False         # a server account (else the laptop's user, whose address is ``to``)


@dataclass
class DigestRun:
    """One reader's part of a digest run."""

    reader: Reader
    to: str | None
    digest: Digest | None = None
    sent: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = self.digest.as_dict() if self.digest is not None else {"user": self.reader.id, "items": []}
        return out | {"username": self.reader.name, "to": self.to, "sent": self.sent, "error": self.error}


def readers(catalog, username: str | None = None) -> list[Reader]:
    """Whose digests to make: ``username`` alone when given; else every active account with a library
    (a server), and the laptop's own user when it has one."""
    from paperscope.accounts import LOCAL_USER, Accounts
    from paperscope.catalog import library as store

    accounts = {u.id: u for u in Accounts(catalog).list_users()}
    if username:
        return [_named_reader(username, accounts)]
    with_library = set(store.users_with_library(catalog))
    out = [Reader(u.id, u.username, u.email, True) for u in sorted(accounts.values(), key=lambda u: u.username.lower())
           if u.is_active and u.id in with_library]
    if LOCAL_USER in with_library or not accounts:
        out.insert(0, Reader(LOCAL_USER, LOCAL_USER))
    return out


def _named_reader(username: str, accounts: dict) -> Reader:
    from paperscope.accounts import username_key

    user = next((u for u in accounts.values() if username_key(u.username) == username_key(username)), None)
    if user is not None:
        if not user.is_active:
            raise DigestError(f"the account {user.username} is disabled; no digest is made for it")
        return Reader(user.id, user.username, user.email, True)
    if accounts and username_key(username) != "local":
        raise DigestError(f"no user named {username!r} in this catalogue (see `paperscope users list`)")
    return Reader(username, username)   # a laptop: the name is the library's user id


def recipient(reader: Reader, settings: SmtpSettings, to: str | None = None) -> str | None:
    """Where ``reader``'s digest goes: ``to`` when given for them, else their account's address, else
    (the laptop's user) the configured ``to``."""
    if to:
        return to
    return reader.email if reader.account else settings.to


def preview_digests(catalog, people: list[Reader], settings: SmtpSettings, to: str | None = None, **options) -> list[DigestRun]:
    """What a run would send to each reader (nothing is sent or recorded). ``options``: those of
    :func:`select_digest` (tag, limit, days, since, now)."""
    return [DigestRun(r, recipient(r, settings, to), select_digest(catalog, r.id, **options)) for r in people]


def send_digests(catalog, people: list[Reader], settings: SmtpSettings, to: str | None = None,
                 send_empty: bool = False, **options) -> list[DigestRun]:
    """Send each reader their digest, to their own address; a failure for one is reported in its run
    and the others are still sent (the failed one is tried again by the next run)."""
    runs = []
    for reader in people:
        run = DigestRun(reader, recipient(reader, settings, to))
        try:
            if not run.to and reader.account:
                run.digest = select_digest(catalog, reader.id, **options)
                if run.digest.items or send_empty:
                    run.error = (f"{reader.name} has no e-mail address on this server; nothing sent "
                                 f"(pass --user {reader.name} --to ADDRESS to send it somewhere)")
            else:
                run.digest, run.sent = send_digest(catalog, reader.id, replace(settings, to=run.to),
                                                   send_empty=send_empty, **options)
        except (DigestError, RecommendError) as exc:
            run.error = str(exc)
        runs.append(run)
    return runs


# =============================================================================================
# Atom
# =============================================================================================


def feed_url(catalog, user: str, tag: str | None, base_url: str) -> str:
    from paperscope.catalog import library as store

    return f"{base_url.rstrip('/')}/feed/{store.feed_token(catalog, user, tag or '')}.atom"


def feed_items(catalog, user: str, tag: str | None, days: int = FEED_DAYS, limit: int = FEED_LIMIT,
               now: datetime | None = None) -> Digest:
    """The best papers added in the last ``days`` for the feed (nothing is recorded)."""
    from paperscope.catalog import library as store
    from paperscope.recommend import recommend

    now = now or datetime.now(timezone.utc)
    start = _iso(now - timedelta(days=days))
    new_ids = store.paper_ids_added_between(catalog, start, _iso(now))
    digest = Digest(user=user, tag=tag, window_start=start, window_end=_iso(now), new_papers=len(new_ids))
    if new_ids:
        result = recommend(catalog, user, tag=tag, limit=limit, candidate_ids=new_ids, hide_seen=False)
        digest.items, digest.mode, digest.message = result.items, result.mode, result.message
    return digest


def atom_feed(catalog, user: str, tag: str | None, base_url: str, self_url: str, days: int = FEED_DAYS,
              limit: int = FEED_LIMIT, now: datetime | None = None) -> bytes:
    """The Atom document of the user's feed for ``tag`` (``feedgen``)."""
    from feedgen.feed import FeedGenerator

    digest = feed_items(catalog, user, tag, days, limit, now)
    fg = FeedGenerator()
    fg.id(f"tag:paperscope,2024:feed/{_feed_key(self_url)}")
    fg.title(f"paperscope: new for you{' in ' + tag if tag else ''}")
    fg.subtitle(f"Papers added in the last {days} days, ranked for your library"
                + (f" (tag “{tag}”)" if tag else "") + ".")
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=f"{base_url}/foryou" + (f"?tag={_q(tag)}" if tag else ""), rel="alternate", type="text/html")
    fg.author({"name": "paperscope"})
    fg.generator("paperscope")
    fg.updated(datetime.fromisoformat(digest.window_end))
    added = _added_at(catalog, digest.paper_ids)
    for item in reversed(_view(digest, base_url)):   # feedgen prepends: add the best last so it comes first
        fe = fg.add_entry()
        fe.id(f"tag:paperscope,2024:paper/{item['id']}")
        fe.title(item["title"] or item["id"])
        # one link only: feedgen 1.0 writes an entry's links without their rel, so a second link
        # would read as another "alternate"; the paper's own pages are listed in the summary
        fe.link(href=item["url"], rel="alternate", type="text/html")
        for name in item["authors"][:20]:
            fe.author({"name": name})
        when = added.get(item["id"]) or digest.window_end
        fe.updated(datetime.fromisoformat(when))
        fe.published(datetime.fromisoformat(when))
        summary = (f"Why: {item['reason']}\n\n" if item["reason"] else "") + (item["abstract"] or "")
        if item["links"]:
            summary += "\n\n" + "\n".join(f"{link['label']}: {link['url']}" for link in item["links"][:3])
        fe.summary(summary)
    return fg.atom_str(pretty=True)


def _added_at(catalog, ids: list[str]) -> dict[str, str]:
    return {p["id"]: p.get("added_at") for p in catalog.papers(ids, with_appearances=False)}


def _feed_key(url: str) -> str:
    import hashlib

    return hashlib.sha1(url.encode()).hexdigest()[:16]


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
