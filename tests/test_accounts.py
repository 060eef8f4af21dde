"""Accounts in server mode, on SQLite and PostgreSQL: sign-up (open, by invitation, closed), sign-in
and out, secure cookies, CSRF on every change, password change and reset by real email (aiosmtpd on
127.0.0.1), API tokens, administrators, rate-limited sign-in. The laptop (no accounts) is unchanged.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

pytest.importorskip("argon2")

from fastapi.testclient import TestClient  # noqa: E402

from paperscope.accounts import (  # noqa: E402
    MAX_FAILURES_PER_NAME,
    AccountError,
    Accounts,
    RateLimited,
    SmtpSettings,
)
from paperscope.catalog.store import Catalog  # noqa: E402
from paperscope.web.app import create_app  # noqa: E402

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


# ------------------------------------------------------------------------------------------- fixtures
class Mailbox:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes
        from email.policy import default

        self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 OK"

    def wait(self, n: int = 1, timeout_s: float = 10):
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def mailbox():
    controller_module = pytest.importorskip("aiosmtpd.controller")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox()
    controller = controller_module.Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.settings = SmtpSettings(host="127.0.0.1", port=port, sender="paperscope@test.invalid")
    yield box
    controller.stop()


@pytest.fixture
def server(catalog_url, mailbox):
    """The web app in server mode over a fresh catalogue, mailing through the test SMTP server."""
    app = create_app(catalog_url, accounts=True)
    accounts: Accounts = app.state.accounts
    accounts.smtp = mailbox.settings
    accounts.base_url = "http://testserver"
    accounts.create_user("alice", PASSWORD, "alice@example.org", is_admin=True)
    accounts.create_user("bob", PASSWORD, "bob@example.org")
    yield app
    app.state.catalog.close()


def form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code in (200, 403), page.text[:300]
    return CSRF_FIELD.search(page.text).group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next: str = "/"):
    token = form_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf": token, "next": next},
                       follow_redirects=False)


def signed_in(app, username: str, password: str = PASSWORD, **kwargs) -> TestClient:
    client = TestClient(app, **kwargs)
    response = sign_in(client, username, password)
    assert response.status_code == 303, response.text[:300]
    return client


# ------------------------------------------------------------------------------------------- sign-in
def test_pages_need_signing_in_and_the_laptop_needs_nothing(server, tmp_path):
    anonymous = TestClient(server)
    page = anonymous.get("/agenda", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fagenda"
    assert anonymous.get("/api/agenda").status_code == 401
    assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/login").status_code == 200

    # a SQLite file on purpose: no accounts is the default there (PostgreSQL's default is server mode)
    laptop = TestClient(create_app(str(tmp_path / "laptop.sqlite")))
    assert laptop.get("/agenda").status_code == 200
    assert laptop.get("/api/agenda").status_code == 200
    assert laptop.get("/login").status_code == 404   # no accounts at all on the laptop


def test_sign_in_sets_secure_cookies_and_sign_out_ends_the_session(server):
    client = TestClient(server, base_url="https://testserver")   # as behind an https proxy
    response = sign_in(client, "alice", next="/agenda")
    assert response.status_code == 303 and response.headers["location"] == "/agenda"
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("paperscope_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" in session
    csrf = next(c for c in cookies if c.startswith("csrf="))
    assert "HttpOnly" in csrf and "SameSite=Strict" in csrf and "Secure" in csrf
    me = client.get("/api/account").json()["user"]
    assert me["username"] == "alice" and me["is_admin"]
    stolen = client.cookies.get("paperscope_session")

    token = form_token(client, "/account")
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/api/account").status_code == 401
    replay = TestClient(server, base_url="https://testserver", cookies={"paperscope_session": stolen})
    assert replay.get("/api/account").status_code == 401   # the old session id is dead on the server too


def test_plain_http_cookies_are_not_marked_secure(server):
    response = sign_in(TestClient(server), "alice")
    session = next(c for c in response.headers.get_list("set-cookie") if c.startswith("paperscope_session="))
    assert "Secure" not in session and "HttpOnly" in session


def test_wrong_password_and_unknown_user_get_the_same_answer(server):
    client = TestClient(server)
    wrong = sign_in(client, "alice", "not the password")
    unknown = sign_in(client, "mallory", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong user name or password" in wrong.text and "wrong user name or password" in unknown.text
    assert "paperscope_session" not in client.cookies


def test_repeated_failures_lock_the_name_for_a_while_but_not_other_users(server):
    client = TestClient(server)
    for _ in range(MAX_FAILURES_PER_NAME):
        assert sign_in(client, "bob", "guess guess guess").status_code == 401
    locked = sign_in(client, "bob", PASSWORD)           # even the right password waits
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in locked.text
    assert sign_in(TestClient(server), "alice").status_code == 303


def test_failures_from_a_stranger_do_not_lock_the_owner_out(catalog_url):
    catalog = Catalog.open(catalog_url)
    accounts = Accounts(catalog, smtp=SmtpSettings(host=None))
    accounts.create_user("dora", PASSWORD)
    for _ in range(MAX_FAILURES_PER_NAME):
        with pytest.raises(AccountError):
            accounts.authenticate("dora", "a wild guess!", ip="198.51.100.7")
    with pytest.raises(RateLimited):
        accounts.authenticate("dora", PASSWORD, ip="198.51.100.7")
    assert accounts.authenticate("dora", PASSWORD, ip="192.0.2.10").username == "dora"
    catalog.close()


def test_a_successful_sign_in_forgives_earlier_failures(catalog_url):
    catalog = Catalog.open(catalog_url)
    accounts = Accounts(catalog, smtp=SmtpSettings(host=None))
    accounts.create_user("carol", PASSWORD)
    for _ in range(MAX_FAILURES_PER_NAME - 1):
        with pytest.raises(AccountError):
            accounts.authenticate("carol", "nope nope nope")
    accounts.authenticate("carol", PASSWORD)
    for _ in range(MAX_FAILURES_PER_NAME - 1):
        with pytest.raises(AccountError):
            accounts.authenticate("carol", "nope nope nope")
    assert accounts.authenticate("Carol", PASSWORD).username == "carol"   # names are case-insensitive
    for _ in range(MAX_FAILURES_PER_NAME):
        with pytest.raises(AccountError):
            accounts.authenticate("carol", "nope nope nope")
    with pytest.raises(RateLimited):
        accounts.authenticate("carol", PASSWORD)
    catalog.close()


def test_only_hashes_are_stored(server):
    from sqlalchemy import select

    from paperscope.catalog.accounts import api_tokens, login_sessions, users

    client = signed_in(server, "alice")
    token = client.post("/api/account/tokens", json={"name": "feeds"},
                        headers={"x-csrf-token": client.cookies["csrf"]}).json()["token"]
    with server.state.catalog.engine.connect() as conn:
        stored_password = conn.execute(select(users.c.password_hash).where(users.c.username_key == "alice")).scalar()
        sessions = [r[0] for r in conn.execute(select(login_sessions.c.id_hash))]
        tokens = [r[0] for r in conn.execute(select(api_tokens.c.token_hash))]
    assert stored_password.startswith("$argon2id$") and PASSWORD not in stored_password
    assert client.cookies["paperscope_session"] not in sessions and len(sessions) == 1
    assert token not in tokens and len(tokens[0]) == 64


# ------------------------------------------------------------------------------------------- CSRF
def test_every_change_needs_the_sessions_csrf_token(server):
    alice = signed_in(server, "alice")
    bob = signed_in(server, "bob")
    body = {"key": "nothing", "venue": "ICLR"}
    assert alice.post("/api/agenda", json=body).status_code == 403                                   # none
    assert alice.post("/api/agenda", json=body, headers={"x-csrf-token": bob.cookies["csrf"]}).status_code == 403
    assert alice.post("/api/agenda", json=body, headers={"x-csrf-token": alice.cookies["csrf"]}).status_code == 404
    assert alice.delete("/api/agenda/1").status_code == 403
    assert alice.post("/account/tokens", data={"name": "x"}).status_code == 403                      # a form without it
    foreign = alice.post("/account/tokens", data={"name": "x", "csrf": alice.cookies["csrf"]},
                         headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403 and "another site" in foreign.text
    made = alice.post("/account/tokens", data={"name": "x", "csrf": alice.cookies["csrf"]})
    assert made.status_code == 200 and "pst_" in made.text
    login_without_token = TestClient(server).post("/login", data={"username": "alice", "password": PASSWORD})
    assert login_without_token.status_code == 403


def test_a_lost_csrf_cookie_comes_back_with_the_next_page_and_its_forms_work(server):
    alice = signed_in(server, "alice")
    token = alice.cookies["csrf"]
    alice.cookies.delete("csrf")
    page = alice.get("/plan")
    assert CSRF_FIELD.search(page.text).group(1) == token == alice.cookies["csrf"]


def test_api_tokens_act_as_their_user_without_csrf_and_can_be_revoked(server):
    alice = signed_in(server, "alice")
    made = alice.post("/api/account/tokens", json={"name": "calendar"}, headers={"x-csrf-token": alice.cookies["csrf"]})
    token_id, token = made.json()["id"], made.json()["token"]
    script = TestClient(server)
    assert script.get("/api/account", headers={"authorization": f"Bearer {token}"}).json()["user"]["username"] == "alice"
    assert script.get(f"/agenda.ics?token={token}").status_code == 200          # calendar apps send no headers
    assert script.post(f"/api/agenda?token={token}", json={"key": "k", "venue": "ICLR"}).status_code == 403
    assert script.get("/api/agenda", headers={"authorization": "Bearer pst_forged"}).status_code == 401
    listed = alice.get("/api/account").json()["tokens"]
    assert [t["name"] for t in listed] == ["calendar"] and "token" not in listed[0]
    assert alice.delete(f"/api/account/tokens/{token_id}", headers={"x-csrf-token": alice.cookies["csrf"]}).status_code == 200
    assert script.get("/api/account", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_one_user_cannot_revoke_anothers_token(server):
    alice, bob = signed_in(server, "alice"), signed_in(server, "bob")
    made = alice.post("/api/account/tokens", json={"name": "mine"}, headers={"x-csrf-token": alice.cookies["csrf"]}).json()
    assert bob.delete(f"/api/account/tokens/{made['id']}", headers={"x-csrf-token": bob.cookies["csrf"]}).status_code == 404
    assert bob.post(f"/account/tokens/{made['id']}/delete", data={"csrf": bob.cookies["csrf"]}).status_code == 404
    assert TestClient(server).get("/api/account", headers={"authorization": f"Bearer {made['token']}"}).status_code == 200


# ------------------------------------------------------------------------------------------- passwords
def test_changing_the_password_signs_out_the_other_sessions(server):
    laptop, phone = signed_in(server, "bob"), signed_in(server, "bob")
    wrong = laptop.post("/account/password", data={"current": "not it at all", "password": "a new password 1",
                                                   "password2": "a new password 1", "csrf": laptop.cookies["csrf"]})
    assert wrong.status_code == 400 and "current password" in wrong.text
    done = laptop.post("/account/password", data={"current": PASSWORD, "password": "a new password 1",
                                                  "password2": "a new password 1", "csrf": laptop.cookies["csrf"]},
                       follow_redirects=False)
    assert done.status_code == 303
    assert laptop.get("/api/account").status_code == 200
    assert phone.get("/api/account").status_code == 401
    assert sign_in(TestClient(server), "bob").status_code == 401
    assert sign_in(TestClient(server), "bob", "a new password 1").status_code == 303


def test_password_reset_by_email_works_once(server, mailbox):
    client = TestClient(server)
    token = form_token(client, "/reset")
    page = client.post("/reset", data={"who": "bob@example.org", "csrf": token})
    assert page.status_code == 200 and "on its way" in page.text
    [mail] = mailbox.wait(1)
    assert mail["To"] == "bob@example.org" and "Reset your paperscope password" in mail["Subject"]
    link = re.search(r"http://testserver(/reset/\S+)", mail.get_content()).group(1)
    other = signed_in(server, "bob")

    form = client.get(link)
    assert form.status_code == 200 and "Choose a new password" in form.text
    done = client.post(link, data={"password": "fresh password 22", "password2": "fresh password 22",
                                   "csrf": CSRF_FIELD.search(form.text).group(1)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/login")
    assert other.get("/api/account").status_code == 401           # every session ended
    assert sign_in(TestClient(server), "bob").status_code == 401
    assert sign_in(TestClient(server), "bob", "fresh password 22").status_code == 303
    again = client.post(link, data={"password": "third password 33", "password2": "third password 33",
                                    "csrf": client.cookies["csrf"]})
    assert again.status_code == 400 and "expired or has been used" in again.text
    assert client.get(link).status_code == 410


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(server, mailbox):
    client = TestClient(server)
    page = client.post("/reset", data={"who": "nobody@example.org", "csrf": form_token(client, "/reset")})
    assert page.status_code == 200 and "on its way" in page.text
    time.sleep(0.3)
    assert mailbox.messages == []


# ------------------------------------------------------------------------------------------- sign-up
def signup_form(client, path="/signup"):
    page = client.get(path)
    field = CSRF_FIELD.search(page.text)
    return page, field.group(1) if field else client.cookies["csrf"]


def test_sign_up_is_by_invitation_by_default_and_each_invitation_works_once(server, mailbox):
    visitor = TestClient(server)
    page, token = signup_form(visitor)
    assert page.status_code == 403 and "invitation only" in page.text
    refused = visitor.post("/signup", data={"username": "carol", "password": "carol's password", "password2": "carol's password",
                                            "csrf": token})
    assert refused.status_code == 400 and "invitation only" in refused.text

    alice = signed_in(server, "alice")
    made = alice.post("/admin/invite", data={"email": "carol@example.org", "csrf": alice.cookies["csrf"]})
    assert made.status_code == 200
    [mail] = mailbox.wait(1)
    invitation = re.search(r"/signup\?invitation=(\S+)", mail.get_content()).group(1)
    page, token = signup_form(visitor, f"/signup?invitation={invitation}")
    assert page.status_code == 200
    wrong_address = visitor.post("/signup", data={"username": "carol", "email": "eve@example.org", "password": "carol's password",
                                                  "password2": "carol's password", "invitation": invitation, "csrf": token})
    assert wrong_address.status_code == 400 and "another email" in wrong_address.text
    created = visitor.post("/signup", data={"username": "carol", "email": "carol@example.org", "password": "carol's password",
                                            "password2": "carol's password", "invitation": invitation, "csrf": token},
                           follow_redirects=False)
    assert created.status_code == 303
    assert visitor.get("/api/account").json()["user"]["username"] == "carol"
    second = TestClient(server)
    _, token = signup_form(second, f"/signup?invitation={invitation}")
    reused = second.post("/signup", data={"username": "dave", "email": "carol@example.org", "password": "dave's password!",
                                          "password2": "dave's password!", "invitation": invitation, "csrf": token})
    assert reused.status_code == 400 and "expired or has been used" in reused.text


def test_the_admin_opens_and_closes_sign_up(server):
    alice = signed_in(server, "alice")
    assert alice.post("/admin/signup", data={"mode": "open", "csrf": alice.cookies["csrf"]}).status_code == 200
    visitor = TestClient(server)
    _, token = signup_form(visitor)
    taken = visitor.post("/signup", data={"username": "BOB", "password": "bob's other pass", "password2": "bob's other pass",
                                          "csrf": token})
    assert taken.status_code == 400 and "taken" in taken.text
    short = visitor.post("/signup", data={"username": "erin", "password": "short", "password2": "short", "csrf": token})
    assert short.status_code == 400 and "at least 10" in short.text
    ok = visitor.post("/signup", data={"username": "erin", "password": "erin's password", "password2": "erin's password",
                                       "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303
    assert alice.post("/admin/signup", data={"mode": "closed", "csrf": alice.cookies["csrf"]}).status_code == 200
    page, _ = signup_form(TestClient(server))
    assert page.status_code == 403 and "closed" in page.text


# ------------------------------------------------------------------------------------------- admin
def test_only_admins_reach_administration(server, tmp_path):
    bob = signed_in(server, "bob")
    assert bob.get("/admin").status_code == 403
    assert bob.get("/api/admin/users").status_code == 403
    assert bob.post("/admin/signup", data={"mode": "open", "csrf": bob.cookies["csrf"]}).status_code == 403
    assert bob.post("/admin/users/bob", data={"action": "make-admin", "csrf": bob.cookies["csrf"]}).status_code == 403

    alice = signed_in(server, "alice")
    users = alice.get("/api/admin/users").json()["users"]
    assert {u["username"] for u in users} == {"alice", "bob"}
    assert alice.post("/admin/users/bob", data={"action": "make-admin", "csrf": alice.cookies["csrf"]}).status_code == 200
    assert bob.get("/api/admin/users").status_code == 200          # roles are read at each request
    assert alice.post("/admin/users/bob", data={"action": "disable", "csrf": alice.cookies["csrf"]}).status_code == 200
    assert bob.get("/api/account").status_code == 401              # a disabled account is signed out
    last = alice.post("/admin/users/alice", data={"action": "drop-admin", "csrf": alice.cookies["csrf"]})
    assert last.status_code == 400 and "last administrator" in last.text


def test_the_admin_ingests_an_uploaded_file(server, tmp_path):
    csv = tmp_path / "accepted.csv"
    csv.write_text("title,authors,abstract,venue,year\n"
                   "Sparse Mixtures of Gated Experts,Ada Lovelace;Alan Turing,We route tokens.,TestConf,2024\n")
    alice = signed_in(server, "alice")
    with csv.open("rb") as fh:
        page = alice.post("/admin/ingest", data={"csrf": alice.cookies["csrf"], "venue": "TestConf", "year": "2024"},
                          files={"upload": ("accepted.csv", fh, "text/csv")})
    assert page.status_code == 200, page.text[:500]
    assert "Ingested" in page.text
    found = alice.get("/api/search", params={"q": "gated experts"}).json()
    assert [h["title"] for h in found["hits"]] == ["Sparse Mixtures of Gated Experts"]
    bob = signed_in(server, "bob")
    with csv.open("rb") as fh:
        assert bob.post("/admin/ingest", data={"csrf": bob.cookies["csrf"]},
                        files={"upload": ("accepted.csv", fh, "text/csv")}).status_code == 403


def test_a_public_server_shows_the_catalogue_but_not_agendas(catalog_url):
    app = create_app(catalog_url, accounts=True, public=True)
    visitor = TestClient(app)
    assert visitor.get("/").status_code == 200
    assert visitor.get("/api/search", params={"q": "x"}).status_code == 200
    assert visitor.get("/agenda", follow_redirects=False).status_code == 303
    assert visitor.get("/api/agenda").status_code == 401
    assert visitor.get("/account", follow_redirects=False).status_code == 303
    app.state.catalog.close()


# ------------------------------------------------------------------------------------------- command line
def test_users_commands(catalog_url, monkeypatch):
    import json

    from typer.testing import CliRunner

    from paperscope.cli import app

    runner = CliRunner()
    monkeypatch.setenv("PAPERSCOPE_PASSWORD", PASSWORD)
    added = runner.invoke(app, ["users", "add", "root", "--admin", "--email", "root@example.org", "--db", catalog_url])
    assert added.exit_code == 0, added.output
    assert runner.invoke(app, ["users", "add", "reader", "--db", catalog_url]).exit_code == 0
    dup = runner.invoke(app, ["users", "add", "Reader", "--db", catalog_url])
    assert dup.exit_code != 0 and "taken" in dup.output and "Traceback" not in dup.output
    assert runner.invoke(app, ["users", "set-admin", "reader", "--db", catalog_url]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["users", "list", "--json", "--db", catalog_url]).stdout)
    assert {u["username"]: u["is_admin"] for u in listed["users"]} == {"reader": True, "root": True}
    assert listed["signup"] == "invite"
    link = runner.invoke(app, ["users", "invite", "--base-url", "https://papers.example.org", "--db", catalog_url])
    assert link.exit_code == 0 and link.stdout.startswith("https://papers.example.org/signup?invitation=")
    token = runner.invoke(app, ["users", "token", "reader", "--db", catalog_url]).stdout.strip()
    catalog = Catalog.open(catalog_url)
    assert Accounts(catalog).token_user(token).username == "reader"
    catalog.close()
    assert runner.invoke(app, ["users", "signup", "open", "--db", catalog_url]).exit_code == 0
    assert runner.invoke(app, ["users", "signup", "wide", "--db", catalog_url]).exit_code != 0
