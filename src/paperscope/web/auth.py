"""Accounts on the web (server mode): sign-in, sign-up, password change and reset, API tokens,
administration, and the two things every per-user route needs:

- ``current_user(request)``: the id of the signed-in user (``"local"`` on the laptop, which has no
  accounts). With accounts on and nobody signed in it raises :class:`LoginRequired` (a redirect to
  the sign-in page for a page, 401 for the API). Per-user routes must take their user from here and
  nowhere else (never from the URL or the body).
- the :class:`AuthMiddleware`, which, in server mode, finds who is asking (a session cookie, or an
  API token: ``Authorization: Bearer pst_...``, or ``?token=`` on GET for feed readers and calendar
  apps), refuses every state-changing request without the session's CSRF token (form field ``csrf``
  or header ``X-CSRF-Token``; double-submit cookie before sign-in) or from another origin, keeps
  pages private unless the server is public, and keeps ``/admin`` to administrators.

Cookies: the session cookie is HttpOnly, SameSite=Lax, and Secure when the request came over https
(directly, or through a proxy trusted by ``--forwarded-allow-ips``); ``csrf`` is the session's CSRF
token, so the planner's forms (which send the ``csrf`` cookie's value) carry the right one.

Laptop mode (no accounts) is unchanged: none of this is installed, and every route sees ``"local"``.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from paperscope.accounts import (
    LOCAL_USER,
    SIGNUP_MODES,
    AccountError,
    Accounts,
    RateLimited,
    User,
)
from paperscope.web.guards import RowId, errors, wrong_method

log = logging.getLogger("paperscope.web")
router = APIRouter()

SESSION_COOKIE = "paperscope_session"
CSRF_COOKIE = "csrf"          # the planner's forms read it (web/schedule_routes.py)
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Open to anyone, even on a private server: signing in needs them.
PUBLIC_PATHS = frozenset({"/login", "/signup", "/reset", "/healthz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/reset/", "/feed/")   # a feed's address holds its own secret token
# Private to the signed-in user even on a public server.
PRIVATE_PREFIXES = ("/account", "/api/account", "/admin", "/api/admin", "/logout")
MAX_FORM_BYTES = 64 * 1024 * 1024


class LoginRequired(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(401, "Sign in to see this page.")


def _truthy(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


# =============================================================================================
# Who is asking
# =============================================================================================


def accounts_of(request: Request) -> Accounts | None:
    return getattr(request.app.state, "accounts", None)


def current_account(request: Request) -> User | None:
    """The signed-in user, or None (also None on the laptop, which has no accounts)."""
    return request.scope.get("state", {}).get("user")


def signed_in(request: Request) -> bool:
    return current_account(request) is not None


def current_user(request: Request) -> str:
    """The id whose per-user data this request may read and change.

    ``"local"`` on the laptop; in server mode the signed-in user's id, or :class:`LoginRequired`.
    """
    if accounts_of(request) is None:
        return LOCAL_USER
    user = current_account(request)
    if user is None:
        raise LoginRequired()
    return user.id


def require_admin(request: Request) -> User:
    user = current_account(request)
    if accounts_of(request) is None:
        raise HTTPException(404, "There are no accounts on this server.")
    if user is None:
        raise LoginRequired()
    if not user.is_admin:
        raise HTTPException(403, "Only an administrator may do this.")
    return user


def _client_ip(scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _is_https(scope) -> bool:
    return scope.get("scheme") == "https" or _truthy(os.environ.get("PAPERSCOPE_SECURE_COOKIES")) is True


def _session_cookie(token: str, secure: bool, max_age: int | None) -> str:
    parts = [f"{SESSION_COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _csrf_cookie(token: str, secure: bool, max_age: int = 14 * 24 * 3600) -> str:
    parts = [f"{CSRF_COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _cookies(scope) -> dict[str, str]:
    from http.cookies import SimpleCookie

    raw = ";".join(v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"cookie")
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header: treat as none
        return {}
    return {k: m.value for k, m in jar.items()}


def _header(scope, name: bytes) -> str:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return ""


def _wants_html(scope) -> bool:
    path = scope["path"]
    if path.startswith("/api/") or "format=json" in scope.get("query_string", b"").decode("latin-1"):
        return False
    return "text/html" in _header(scope, b"accept") or scope["method"] in ("GET", "HEAD")


def _is_public(path: str, method: str, public_server: bool) -> bool:
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return True
    if public_server and method in SAFE_METHODS:
        return not path.startswith(PRIVATE_PREFIXES)
    return False


class AuthMiddleware:
    """Server mode's gate: identifies the user, checks CSRF and origin, keeps private pages private."""

    def __init__(self, app, accounts: Accounts, public: bool = False):
        self.app = app
        self.accounts = accounts
        self.public = public

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        path = scope["path"]
        if path.startswith("/static/") and method in SAFE_METHODS:
            return await self.app(scope, receive, send)   # the same files for everyone: no database lookup
        cookies = _cookies(scope)
        user, session, via = await run_in_threadpool(self._identify, scope, cookies)
        state = scope.setdefault("state", {})
        state.update(user=user, session=session, auth_via=via)
        secure = _is_https(scope)

        async def refuse(status: int, message: str, headers: list | None = None) -> None:
            if wrong_method(scope):  # the path takes other methods only: the app answers 405, nothing is read
                return await self.app(scope, receive, send)
            return await _plain(send, scope, status, message, headers)

        if method not in SAFE_METHODS:
            origin = _header(scope, b"origin")
            if origin and (origin == "null" or urlparse(origin).netloc not in self._own_hosts(scope)):
                return await refuse(403, "This request came from another site; it was refused.")
            if via != "token":
                expected = session.csrf_token if session else cookies.get(CSRF_COOKIE, "")
                supplied = _header(scope, CSRF_HEADER.encode())
                if not supplied:
                    try:
                        body, supplied = await _form_token(scope, receive)
                    except UnreadableForm as exc:
                        return await refuse(400, f"This form could not be read: {str(exc).rstrip('.')}.")
                    if body is None:
                        return await refuse(413, "That upload is too large.")
                    receive = _replay(body)
                if not expected or not supplied or not secrets.compare_digest(expected, supplied):
                    return await refuse(403, "This form has expired (its security token does not match). "
                                             "Reload the page and try again.")
        if user is None and not _is_public(path, method, self.public):
            if _wants_html(scope) and method in ("GET", "HEAD") and not wrong_method(scope):
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                return await _redirect(send, "/login?" + urlencode({"next": target}))
            return await refuse(401, "Sign in first (or send an API token: Authorization: Bearer ...).",
                                headers=[(b"www-authenticate", b'Bearer realm="paperscope"')])
        if (path.startswith("/admin") or path.startswith("/api/admin")) and user is not None and not user.is_admin:
            return await refuse(403, "Only an administrator may open this page.")

        if session is not None and via == "session" and cookies.get(CSRF_COOKIE) != session.csrf_token:
            # pages below read the form token from the csrf cookie: let them see the session's (and the
            # browser gets it with this response), so the forms of this very page are already right
            cookies[CSRF_COOKIE] = session.csrf_token
            header = "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("latin-1")
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"cookie"] + [(b"cookie", header)]
            state["csrf_stale"] = True

        async def send_with_cookie(message):
            if message["type"] == "http.response.start" and state.get("csrf_stale"):
                if not state.get("csrf_cookie_set"):
                    headers = list(message.get("headers", []))
                    headers.append((b"set-cookie", _csrf_cookie(session.csrf_token, secure).encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _own_hosts(self, scope) -> set[str]:
        """This site's host as the request names it, and as ``PAPERSCOPE_BASE_URL`` does (a proxy that
        does not pass the Host header on)."""
        hosts = {_header(scope, b"host")}
        if self.accounts.base_url:
            hosts.add(urlparse(self.accounts.base_url).netloc)
        return hosts

    def _identify(self, scope, cookies: dict[str, str]):
        auth = _header(scope, b"authorization")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token and scope["method"] in ("GET", "HEAD"):
            token = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]
        if token:
            user = self.accounts.token_user(token)
            return user, None, ("token" if user else None)
        session = self.accounts.session(cookies.get(SESSION_COOKIE))
        return (session.user, session, "session") if session else (None, None, None)


class UnreadableForm(ValueError):
    """A request body that says it is a form but cannot be parsed as one."""


async def _form_token(scope, receive) -> tuple[bytes | None, str]:
    """Read the body (to be replayed to the app) and the ``csrf`` field of a form in it."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, ""
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    content_type = _header(scope, b"content-type").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return body, (parse_qs(body.decode("latin-1")).get("csrf") or [""])[0]
    if content_type.startswith("multipart/form-data"):
        from starlette.requests import Request as StarletteRequest

        form_request = StarletteRequest(scope, _replay(body))
        try:
            form = await form_request.form()
        except StarletteHTTPException as exc:  # what Starlette makes of a malformed multipart body
            raise UnreadableForm(str(exc.detail)) from None
        except (MultiPartException, KeyError, ValueError) as exc:
            raise UnreadableForm(str(exc) or type(exc).__name__) from None
        token = form.get("csrf")
        await form.close()
        return body, token if isinstance(token, str) else ""
    return body, ""


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _plain(send, scope, status: int, message: str, headers: list | None = None) -> None:
    import json

    if _wants_html(scope):
        body = (f"<!doctype html><meta charset=utf-8><title>{status}</title><link rel=stylesheet href=/static/style.css>"
                f"<main class=error-page><h1>{status}</h1><p>{escape(message)}</p><p><a href=/>Home</a> · "
                f"<a href=/login>Sign in</a></p></main>").encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message, "status": status}).encode()
        content_type = b"application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


# =============================================================================================
# Installing it in the app
# =============================================================================================


def accounts_enabled(catalog, accounts: bool | None) -> bool:
    """Accounts are on when asked (``serve --accounts``, ``PAPERSCOPE_ACCOUNTS=1``) or on PostgreSQL."""
    if accounts is not None:
        return accounts
    from_env = _truthy(os.environ.get("PAPERSCOPE_ACCOUNTS"))
    if from_env is not None:
        return from_env
    return not catalog.is_sqlite


def install(app, catalog, accounts: bool | None = None, public: bool | None = None) -> None:
    """Turn on server mode in ``app`` when accounts are enabled; on the laptop this changes nothing."""
    app.state.accounts = None
    if not accounts_enabled(catalog, accounts):
        return
    from starlette.middleware import Middleware

    service = Accounts(catalog)
    public = _truthy(os.environ.get("PAPERSCOPE_PUBLIC")) if public is None else public
    app.state.accounts = service
    app.state.public = bool(public)
    app.state.agenda_user = current_user
    # innermost of the app's middleware: the security headers still go on its refusals
    app.user_middleware.append(Middleware(AuthMiddleware, accounts=service, public=bool(public)))
    app.add_exception_handler(LoginRequired, _login_required)
    app.include_router(router)
    env = getattr(app.state, "templates", None)
    if env is not None:
        env.globals["account_nav"] = account_nav
        env.globals["signed_in"] = signed_in   # a library and "For you" exist only for a signed-in reader
    _watch_indexes(app)


def _watch_indexes(app) -> None:
    """A server's workers live long and the catalogue may change behind them (an ingest run on another
    machine, or as another user, updates another copy of the keyword index): every
    ``PAPERSCOPE_INDEX_CHECK_S`` seconds (default 60; 0 turns it off) each worker checks that the index
    is in step with the catalogue, and rebuilds it if not. The lock file makes one worker do it; the
    others keep serving the last complete index and pick the new one up when it is published."""
    import threading
    import time

    interval = float(os.environ.get("PAPERSCOPE_INDEX_CHECK_S", "60") or 0)
    if interval <= 0:
        return

    import weakref

    app_ref = weakref.ref(app)   # the watch ends with the app

    def run() -> None:
        from paperscope.index.lexical import IndexBusy
        from paperscope.index.maintain import ensure_indexes

        from sqlalchemy.exc import OperationalError

        wait = interval
        while True:
            time.sleep(wait)
            live = app_ref()
            if live is None:
                return
            catalog = live.state.catalog
            del live
            try:
                ensure_indexes(catalog)
                wait = interval
            except IndexBusy:
                pass                     # another worker or an ingest is writing it
            except OperationalError as exc:  # the database is away: say so briefly, try less often
                log.warning("cannot check the keyword index: %s", str(exc).splitlines()[0])
                wait = min(wait * 4, 600)
            except Exception:  # noqa: BLE001 - the next round tries again; searches still serve
                log.exception("checking the keyword index failed")

    threading.Thread(target=run, name="paperscope-index-watch", daemon=True).start()


async def _login_required(request: Request, exc: LoginRequired):
    if _wants_html(request.scope) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
    return JSONResponse({"error": "Sign in first (or send an API token: Authorization: Bearer ...).", "status": 401},
                        status_code=401, headers={"www-authenticate": 'Bearer realm="paperscope"'})


def account_nav(request) -> Markup:
    """The header's account links (base.html calls it when server mode defines it)."""
    if accounts_of(request) is None:
        return Markup("")
    style = '<link rel="stylesheet" href="/static/account.css">'   # every page, whatever its own styles
    user = current_account(request)
    if user is None:
        return Markup(f'{style}<a href="/login">Sign in</a>')
    session = request.scope.get("state", {}).get("session")
    admin = '<a href="/admin">Admin</a>' if user.is_admin else ""
    logout = ""
    if session is not None:
        logout = (f'<form class="inline-form nav-form" action="/logout" method="post">'
                  f'<input type="hidden" name="csrf" value="{escape(session.csrf_token)}">'
                  f'<button type="submit" class="linklike">Sign out</button></form>')
    return Markup(f'{style}{admin}<a href="/account">{escape(user.username)}</a>{logout}')


# =============================================================================================
# Pages
# =============================================================================================


def _env(request: Request):
    from paperscope.web.schedule_routes import _env as planner_env

    return planner_env(request)


def _service(request: Request) -> Accounts:
    service = accounts_of(request)
    if service is None:
        raise HTTPException(404, "There are no accounts on this server (it runs in laptop mode).")
    return service


def _form_csrf(request: Request) -> tuple[str, bool]:
    session = request.scope.get("state", {}).get("session")
    if session is not None:
        return session.csrf_token, False
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32 and token.isalnum():
        return token, False
    return secrets.token_hex(24), True


def _page(request: Request, template: str, status: int = 200, **data: Any) -> Response:
    from paperscope.web.timefmt import resolve_zone

    token, new = _form_csrf(request)
    zone = resolve_zone(None, request.cookies.get("tz"))
    html = _env(request).get_template(template).render(
        page=None, zone=zone, request=request, path=request.url.path, query="", csrf_token=token,
        me=current_account(request), **data)
    response = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
    if new:
        response.headers.append("set-cookie", _csrf_cookie(token, _is_https(request.scope)))
    return response


def _safe_next(target: str | None, default: str = "/") -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/"):
    if current_account(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _page(request, "auth_login.html", next=_safe_next(next), error=None, username="",
                 signup=_service(request).signup_mode())


@router.post("/login", include_in_schema=False)
def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")):
    service = _service(request)
    try:
        user = service.authenticate(username, password, ip=_client_ip(request.scope))
    except RateLimited as exc:
        response = _page(request, "auth_login.html", status=429, next=_safe_next(next), error=str(exc),
                         username=username, signup=service.signup_mode())
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    except AccountError as exc:
        return _page(request, "auth_login.html", status=401, next=_safe_next(next), error=str(exc),
                     username=username, signup=service.signup_mode())
    return _signed_in(request, service, user, _safe_next(next))


def _signed_in(request: Request, service: Accounts, user: User, target: str) -> Response:
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        service.end_session(old)   # a new session id at every sign-in (no session fixation)
    session = service.start_session(user, ip=_client_ip(request.scope), user_agent=request.headers.get("user-agent", ""))
    secure = _is_https(request.scope)
    response = RedirectResponse(target, status_code=303)
    response.headers.append("set-cookie", _session_cookie(session.token, secure, int(14 * 24 * 3600)))
    response.headers.append("set-cookie", _csrf_cookie(session.csrf_token, secure))
    request.scope.setdefault("state", {})["csrf_cookie_set"] = True
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request):
    _service(request).end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    secure = _is_https(request.scope)
    response.headers.append("set-cookie", _session_cookie("", secure, 0))
    response.headers.append("set-cookie", _csrf_cookie("", secure, 0))
    request.scope.setdefault("state", {})["csrf_cookie_set"] = True
    return response


@router.get("/signup", include_in_schema=False)
def signup_page(request: Request, invitation: str = ""):
    service = _service(request)
    mode = service.signup_mode()
    live = service.invitation_is_live(invitation) if invitation else False
    error = None
    if invitation and not live:
        error = "This invitation has expired or has been used; ask for a new one."
    elif not invitation and mode != "open":
        error = ("Sign-up on this server is by invitation only." if mode == "invite"
                 else "Sign-up on this server is closed; ask an administrator for an account.")
    return _page(request, "auth_signup.html", status=200 if not error else 403, error=error, invitation=invitation,
                 can_sign_up=live or (not invitation and mode == "open"), username="", email="")


@router.post("/signup", include_in_schema=False)
def signup(request: Request, username: str = Form(""), password: str = Form(""), password2: str = Form(""),
           email: str = Form(""), invitation: str = Form("")):
    service = _service(request)
    try:
        if password != password2:
            raise AccountError("the two passwords differ")
        user = service.sign_up(username, password, email or None, invitation or None)
    except AccountError as exc:
        return _page(request, "auth_signup.html", status=400, error=str(exc), invitation=invitation,
                     can_sign_up=True, username=username, email=email)
    return _signed_in(request, service, user, "/")


@router.get("/reset", include_in_schema=False)
def reset_page(request: Request):
    return _page(request, "auth_reset.html", sent=False, error=None)


@router.post("/reset", include_in_schema=False)
def reset_request(request: Request, who: str = Form("")):
    service = _service(request)
    try:
        service.request_password_reset(who, base_url=_base_url(request))
    except AccountError as exc:
        return _page(request, "auth_reset.html", status=503, sent=False, error=str(exc))
    except OSError:
        log.exception("could not send a password-reset mail")
        return _page(request, "auth_reset.html", status=503, sent=False,
                     error="The mail could not be sent just now; try again later or ask an administrator.")
    return _page(request, "auth_reset.html", sent=True, error=None)


@router.get("/reset/{token}", include_in_schema=False)
def reset_form(request: Request, token: str):
    live = _service(request).reset_is_live(token)
    return _page(request, "auth_reset_form.html", status=200 if live else 410, token=token, live=live, error=None)


@router.post("/reset/{token}", include_in_schema=False)
def reset_password(request: Request, token: str, password: str = Form(""), password2: str = Form("")):
    service = _service(request)
    try:
        if password != password2:
            raise AccountError("the two passwords differ")
        service.reset_password(token, password)
    except AccountError as exc:
        return _page(request, "auth_reset_form.html", status=400, token=token, live=service.reset_is_live(token),
                     error=str(exc))
    return RedirectResponse("/login?" + urlencode({"next": "/", "reset": "1"}), status_code=303)


# ---------------------------------------------------------------------------------------------
# Your account
# ---------------------------------------------------------------------------------------------


def _me(request: Request) -> User:
    _service(request)
    user = current_account(request)
    if user is None:
        raise LoginRequired()
    return user


@router.get("/account", include_in_schema=False)
def account_page(request: Request, new_token: str = "", done: str = ""):
    me = _me(request)
    service = _service(request)
    return _page(request, "account.html", user=me, tokens=service.tokens(me), sessions=service.sessions_of(me),
                 new_token=None, message=_DONE.get(done), error=None)


_DONE = {"password": "Your password has been changed; your other sessions have been signed out.",
         "revoked": "The token has been revoked."}


@router.post("/account/password", include_in_schema=False)
def account_password(request: Request, current: str = Form(""), password: str = Form(""), password2: str = Form("")):
    me = _me(request)
    service = _service(request)
    try:
        if password != password2:
            raise AccountError("the two new passwords differ")
        service.change_password(me, current, password, keep_session=request.cookies.get(SESSION_COOKIE))
    except AccountError as exc:
        return _page(request, "account.html", status=400, user=me, tokens=service.tokens(me),
                     sessions=service.sessions_of(me), new_token=None, message=None, error=str(exc))
    return RedirectResponse("/account?done=password", status_code=303)


@router.post("/account/tokens", include_in_schema=False)
def account_token_create(request: Request, name: str = Form("")):
    me = _me(request)
    service = _service(request)
    _, token = service.create_token(me, name)
    return _page(request, "account.html", user=me, tokens=service.tokens(me), sessions=service.sessions_of(me),
                 new_token=token, message=None, error=None)


@router.post("/account/tokens/{token_id}/delete", include_in_schema=False)
def account_token_delete(request: Request, token_id: int):
    me = _me(request)
    if not _service(request).revoke_token(me, token_id):
        raise HTTPException(404, "You have no token with that number.")
    return RedirectResponse("/account?done=revoked", status_code=303)


class TokenIn(BaseModel):
    name: str = "script"


@router.get("/api/account", tags=["account"])
def api_account(request: Request) -> dict[str, Any]:
    """Who you are signed in as, with your API tokens (never their values)."""
    me = _me(request)
    return {"user": me.as_dict(), "tokens": _service(request).tokens(me)}


@router.post("/api/account/tokens", tags=["account"])
def api_token_create(request: Request, body: TokenIn) -> dict[str, Any]:
    """A new API token (shown once): send it as ``Authorization: Bearer <token>``."""
    me = _me(request)
    token_id, token = _service(request).create_token(me, body.name)
    return {"id": token_id, "token": token}


@router.delete("/api/account/tokens/{token_id:int}", tags=["account"], responses=errors(404))
def api_token_delete(request: Request, token_id: RowId) -> dict[str, Any]:
    """Revoke one of your API tokens."""
    me = _me(request)
    if not _service(request).revoke_token(me, token_id):
        raise HTTPException(404, "You have no token with that number.")
    return {"revoked": token_id}


# ---------------------------------------------------------------------------------------------
# Administration
# ---------------------------------------------------------------------------------------------


def _admin_page(request: Request, status: int = 200, message: str | None = None, error: str | None = None,
                invitation_link: str | None = None, ingest: dict | None = None) -> Response:
    admin = require_admin(request)
    service = _service(request)
    return _page(request, "account_admin.html", status=status, user=admin, users=service.list_users(),
                 invitations=service.invitations()[:50], signup=service.signup_mode(), modes=SIGNUP_MODES,
                 message=message, error=error, invitation_link=invitation_link, ingest=ingest,
                 mail=service.smtp.configured)


@router.get("/admin", include_in_schema=False)
def admin_page(request: Request):
    return _admin_page(request)


@router.post("/admin/signup", include_in_schema=False)
def admin_signup(request: Request, mode: str = Form("")):
    require_admin(request)
    try:
        _service(request).set_signup_mode(mode)
    except AccountError as exc:
        return _admin_page(request, 400, error=str(exc))
    return _admin_page(request, message=f"Sign-up is now {mode}.")


@router.post("/admin/invite", include_in_schema=False)
def admin_invite(request: Request, email: str = Form(""), make_admin: str = Form("")):
    admin = require_admin(request)
    try:
        link = _service(request).invite(admin, email or None, make_admin=bool(make_admin), base_url=_base_url(request))
    except (AccountError, OSError) as exc:
        return _admin_page(request, 400, error=str(exc))
    sent = " and mailed" if email and _service(request).smtp.configured else ""
    return _admin_page(request, message=f"Invitation made{sent}; it works once.", invitation_link=link)


@router.post("/admin/users/{username}", include_in_schema=False)
def admin_user(request: Request, username: str, action: str = Form("")):
    require_admin(request)
    service = _service(request)
    actions = {"make-admin": lambda: service.set_admin(username, True),
               "drop-admin": lambda: service.set_admin(username, False),
               "disable": lambda: service.set_active(username, False),
               "enable": lambda: service.set_active(username, True)}
    if action not in actions:
        return _admin_page(request, 400, error="Unknown action.")
    try:
        actions[action]()
    except AccountError as exc:
        return _admin_page(request, 400, error=str(exc))
    return _admin_page(request, message=f"{username}: done ({action}).")


@router.post("/admin/ingest", include_in_schema=False)
def admin_ingest(request: Request, url: str = Form(""), venue: str = Form(""), year: str = Form(""),
                 upload: UploadFile | None = File(None)):
    """Read a source into the catalogue: a URL, or an uploaded file (a saved page, a dump, a CSV)."""
    require_admin(request)
    outcome = _ingest(request, url.strip(), venue.strip(), year.strip(), upload)
    if "error" in outcome:
        return _admin_page(request, 400, error=outcome["error"])
    return _admin_page(request, message="Ingested.", ingest=outcome)


@router.get("/api/admin/users", tags=["admin"])
def api_admin_users(request: Request) -> dict[str, Any]:
    """Every account (administrators only)."""
    require_admin(request)
    return {"users": [u.as_dict() for u in _service(request).list_users()], "signup": _service(request).signup_mode()}


def _ingest(request: Request, url: str, venue: str, year: str, upload) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from paperscope.ingest.pipeline import ingest_targets
    from paperscope.model import ImportOptions

    if year and not (year.isdigit() and len(year) == 4):
        return {"error": f"“{year}” is not a year."}
    options = ImportOptions(venue=venue or None, year=int(year) if year else None)
    catalog = request.app.state.catalog
    with tempfile.TemporaryDirectory(prefix="paperscope-upload-") as folder:
        if upload is not None and upload.filename:
            name = Path(upload.filename).name or "upload"
            target = str(Path(folder) / name)
            with open(target, "wb") as fh:
                while chunk := upload.file.read(1 << 20):
                    fh.write(chunk)
        elif url:
            if not url.startswith(("http://", "https://")):
                return {"error": "Give an http(s) address, or upload a file."}
            target = url
        else:
            return {"error": "Give an address or choose a file to upload."}
        run = ingest_targets(catalog, [target], options)
    venues = getattr(request.app.state, "venues", None)
    if venues is not None and hasattr(venues, "refresh"):
        venues.refresh(catalog)   # this worker's counts now; the others' within their refresh time
    return {"totals": run.totals(), "problems": run.problem_lines()[:50], "index": run.index_message}


__all__ = ["current_user", "current_account", "require_admin", "install", "LoginRequired", "AuthMiddleware",
           "account_nav", "router"]
