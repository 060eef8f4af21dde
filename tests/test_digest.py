"""The digest: new papers since the last digest, ranked for the library, sent once and only once.

A real SMTP server (aiosmtpd) runs on 127.0.0.1 on a free port; the message it receives is parsed back:
one text/plain and one text/html part, links to the papers. The Atom feed is read back by feedparser.
The catalogue is real, on both backends (a SQLite file and a PostgreSQL database), with papers
ingested in two batches (yesterday's and today's). On a server, one run sends every user with a
library their own digest, at their own address, each once.
"""

from __future__ import annotations

import email
import shutil
import socket
import ssl
import subprocess
import time
from datetime import datetime, timedelta, timezone
from email import policy

import pytest

from paperscope import digest as dg
from paperscope import library as lib
from paperscope.catalog import library as store
from paperscope.catalog.store import Catalog
from paperscope.model import Appearance, PaperRecord

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="the SMTP tests need aiosmtpd (pip install aiosmtpd)")
feedparser = pytest.importorskip("feedparser", reason="the feed test needs feedparser (pip install feedparser)")

USER = "local"

OLD = [  # in the catalogue before the first digest
    ("Semi-Supervised Classification with Graph Convolutional Networks", ["Thomas N. Kipf", "Max Welling"],
     "We present a scalable approach for semi-supervised learning on graph-structured data that is based on an "
     "efficient variant of convolutional neural networks which operate directly on graphs.", {"arxiv": "1609.02907"}),
    ("Graph Attention Networks", ["Petar Veličković", "Guillem Cucurull", "Arantxa Casanova", "Adriana Romero",
                                  "Pietro Liò", "Yoshua Bengio"],
     "We present graph attention networks (GATs), novel neural network architectures that operate on "
     "graph-structured data, leveraging masked self-attentional layers.", {"arxiv": "1710.10903"}),
    ("Denoising Diffusion Probabilistic Models", ["Jonathan Ho", "Ajay Jain", "Pieter Abbeel"],
     "We present high quality image synthesis results using diffusion probabilistic models, a class of latent "
     "variable models inspired by considerations from nonequilibrium thermodynamics.", {"arxiv": "2006.11239"}),
]
NEW = [  # ingested after it
    ("How Powerful are Graph Neural Networks?", ["Keyulu Xu", "Weihua Hu", "Jure Leskovec", "Stefanie Jegelka"],
     "Graph Neural Networks (GNNs) are an effective framework for representation learning of graphs. We present a "
     "theoretical framework for analyzing the expressive power of GNNs to capture different graph structures.",
     {"arxiv": "1810.00826"}),
    ("Inductive Representation Learning on Large Graphs", ["William L. Hamilton", "Rex Ying", "Jure Leskovec"],
     "Low-dimensional embeddings of nodes in large graphs have proved extremely useful. We present GraphSAGE, a "
     "general inductive framework that leverages node feature information to generate node embeddings.",
     {"arxiv": "1706.02216"}),
    ("Score-Based Generative Modeling through Stochastic Differential Equations",
     ["Yang Song", "Jascha Sohl-Dickstein", "Diederik P. Kingma", "Abhishek Kumar", "Stefano Ermon", "Ben Poole"],
     "Creating noise from data is easy; creating data from noise is generative modeling. We present a stochastic "
     "differential equation that smoothly transforms a complex data distribution to a known prior distribution.",
     {"arxiv": "2011.13456"}),
    ("Proximal Policy Optimization Algorithms", ["John Schulman", "Filip Wolski", "Prafulla Dhariwal", "Alec Radford",
                                                 "Oleg Klimov"],
     "We propose a new family of policy gradient methods for reinforcement learning, which alternate between "
     "sampling data through interaction with the environment and optimizing a surrogate objective function.",
     {"arxiv": "1707.06347"}),
]


def records(rows, venue="arXiv"):
    return [PaperRecord(title=t, authors=a, abstract=ab, ids=ids, year=2020,
                        appearance=Appearance(venue=venue, url=f"https://arxiv.org/abs/{ids['arxiv']}"))
            for t, a, ab, ids in rows]


def embed_what_is_there(catalog) -> None:
    """Vectors for the papers in the catalogue now (MiniLM, cached on disk by text): today's papers will
    have none, as when `paperscope embed` has not run since they came."""
    try:
        from paperscope.index.embedder import EmbeddingCache, cache_dir, default_embedder
        from paperscope.index.vectors import embed_catalog
        from paperscope.similarity import CachedEmbedder

        base = default_embedder()
    except Exception as exc:  # no model: the digest ranks by shared terms and says so
        print(f"no embedding model: {exc}")
        return
    embed_catalog(catalog, CachedEmbedder(base, EmbeddingCache(cache_dir() / "embeddings", base.name)), with_sentences=False)


def after_a_second() -> None:
    time.sleep(1.1)   # catalogue times have whole seconds: what comes next is strictly later


@pytest.fixture()
def catalog(catalog_url):
    """Yesterday's papers, two of them saved; a digest already covered them; today's papers arrive."""
    catalog = Catalog.open(catalog_url)
    catalog.ingest("yesterday.jsonl", "tabular", "h1", records(OLD))
    embed_what_is_there(catalog)
    ids = {p["title"]: p["id"] for p in catalog.iter_papers()}
    lib.save(catalog, USER, ids["Semi-Supervised Classification with Graph Convolutional Networks"], tags=["graphs"])
    lib.save(catalog, USER, ids["Denoising Diffusion Probabilistic Models"], tags=["generative"])
    store.record_digest(catalog, USER, dg.CHANNEL_EMAIL, "", "me@example.org", None, dg._iso(datetime.now(timezone.utc)), [])
    after_a_second()
    catalog.ingest("today.jsonl", "tabular", "h2", records(NEW))
    catalog.ids = {p["title"]: p["id"] for p in catalog.iter_papers()}
    yield catalog
    catalog.close()


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def smtp():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def settings_for(controller, **more) -> dg.SmtpSettings:
    return dg.load_settings({"host": controller.hostname, "port": controller.port, "security": "none",
                             "from": "paperscope@example.org", "to": "reader@example.org",
                             "base_url": "http://papers.example.org"} | more)


def test_the_digest_holds_only_papers_added_since_the_last_one(catalog):
    digest = dg.select_digest(catalog, USER)
    titles = [r.paper["title"] for r in digest.items]
    assert set(titles) == {t for t, *_ in NEW}          # none of yesterday's, all of today's
    assert digest.new_papers == 4
    # ranked for the library: the graph and diffusion papers before the reinforcement-learning one
    assert titles[-1] == "Proximal Policy Optimization Algorithms"
    graph = next(r for r in digest.items if r.paper["title"] == "How Powerful are Graph Neural Networks?")
    assert graph.closest[0]["title"] == "Semi-Supervised Classification with Graph Convolutional Networks"
    assert "graph" in " ".join(graph.terms).lower()
    # per tag
    generative = dg.select_digest(catalog, USER, tag="generative")
    assert [r.paper["title"] for r in generative.items][0] == "Score-Based Generative Modeling through Stochastic Differential Equations"


def test_sending_through_a_real_smtp_server_and_never_twice(catalog, smtp):
    controller, inbox = smtp
    settings = settings_for(controller)
    digest, sent = dg.send_digest(catalog, USER, settings)
    assert sent and len(inbox.messages) == 1
    sender, rcpts, raw = inbox.messages[0]
    assert sender == "paperscope@example.org" and rcpts == ["reader@example.org"]
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "paperscope: 4 new papers for you"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    text, html = parts["text/plain"], parts["text/html"]
    for title, *_ in NEW:
        assert title in text and title.replace("'", "&#39;") in html
    gin = catalog.ids["How Powerful are Graph Neural Networks?"]
    assert f"http://papers.example.org/paper/{gin}" in text
    assert f'href="http://papers.example.org/paper/{gin}"' in html
    assert 'href="https://arxiv.org/abs/1810.00826"' in html                # the paper's own page too
    assert "Why: close to" in text and "Veličković" not in text               # yesterday's papers are not in it

    # recorded: the same run again finds nothing new and sends nothing
    again, sent_again = dg.send_digest(catalog, USER, settings)
    assert not sent_again and again.items == [] and len(inbox.messages) == 1
    assert store.digest_history(catalog, USER)[0]["papers"] == 4
    # even with an explicit window that covers them again, a paper is never sent twice
    covered, _ = dg.send_digest(catalog, USER, settings, since="2000-01-01")
    assert {r.paper["title"] for r in covered.items} == {"Graph Attention Networks"}   # unsent, not saved
    assert len(inbox.messages) == 2
    # what was sent counts as seen: the For-you list leaves it out
    from paperscope.recommend import recommend

    assert gin not in [r.paper["id"] for r in recommend(catalog, USER).items]


def test_dry_run_and_failures_record_nothing(catalog, smtp, monkeypatch):
    controller, inbox = smtp
    dry = dg.select_digest(catalog, USER)
    assert len(dry.items) == 4 and store.digest_history(catalog, USER)[0]["papers"] == 0   # only the fixture's run
    # a server that refuses the connection: an error that says where, nothing recorded, nothing lost
    closed = settings_for(controller, port=free_port())
    with pytest.raises(dg.DigestError, match="could not send through 127.0.0.1"):
        dg.send_digest(catalog, USER, closed)
    assert len(dg.select_digest(catalog, USER).items) == 4
    with pytest.raises(dg.DigestError, match="no recipient"):
        dg.send_digest(catalog, USER, dg.SmtpSettings(host="127.0.0.1", port=controller.port, security="none"))
    # settings from the environment; the command line wins over it
    monkeypatch.setenv("PAPERSCOPE_SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("PAPERSCOPE_SMTP_SECURITY", "ssl")
    monkeypatch.setenv("PAPERSCOPE_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("PAPERSCOPE_CONFIG", "/nonexistent/config.toml")
    s = dg.load_settings({"port": 2465})
    assert (s.host, s.effective_port, s.security, s.password) == ("smtp.example.org", 2465, "ssl", "s3cret")
    assert s.public()["password"] == "***"
    assert dg.load_settings({"security": "none"}).effective_port == 25
    with pytest.raises(dg.DigestError, match="starttls, ssl or none"):
        dg.load_settings({"security": "tls1.0"})


def test_config_file_settings(tmp_path, monkeypatch):
    for name in ("HOST", "PORT", "SECURITY", "USER", "PASSWORD", "FROM"):
        monkeypatch.delenv(f"PAPERSCOPE_SMTP_{name}", raising=False)
    config = tmp_path / "config.toml"
    config.write_text('[smtp]\nhost = "mail.example.org"\nuser = "me"\npassword = "pw"\nto = "me@example.org"\n', encoding="utf-8")
    monkeypatch.setenv("PAPERSCOPE_CONFIG", str(config))
    s = dg.load_settings()
    assert (s.host, s.effective_port, s.security, s.user, s.to) == ("mail.example.org", 587, "starttls", "me", "me@example.org")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command to make a test certificate")
def test_starttls_with_login(catalog, tmp_path):
    """STARTTLS and AUTH against a real server with its own certificate (trusted through cafile)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"reader", b"s3cret")
        logins.append(ok)
        return AuthResult(success=ok)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_required=True)
    controller.start()
    try:
        settings = settings_for(controller, security="starttls", user="reader", password="s3cret", cafile=str(cert))
        _, sent = dg.send_digest(catalog, USER, settings)
        assert sent and logins == [True] and len(inbox.messages) == 1
        with pytest.raises(dg.DigestError, match="could not send"):
            dg.send_digest(catalog, USER, settings_for(controller, security="none"), since="2000-01-01")
    finally:
        controller.stop()


def test_atom_feed_per_tag_at_a_private_url(catalog):
    from fastapi.testclient import TestClient

    from paperscope.web.app import create_app

    client = TestClient(create_app(catalog.location, catalog=catalog))
    url = dg.feed_url(catalog, USER, "graphs", "http://testserver")
    assert url == dg.feed_url(catalog, USER, "graphs", "http://testserver")      # one address per user and tag
    assert url != dg.feed_url(catalog, USER, None, "http://testserver")
    assert url != dg.feed_url(catalog, "someone-else", "graphs", "http://testserver")
    res = client.get(url.replace("http://testserver", ""))
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(res.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "paperscope: new for you in graphs"
    titles = [e.title for e in feed.entries]
    assert set(titles[:3]) == {"How Powerful are Graph Neural Networks?", "Inductive Representation Learning on Large Graphs",
                               "Graph Attention Networks"}          # the graph papers lead the "graphs" feed
    assert "Semi-Supervised Classification with Graph Convolutional Networks" not in titles   # saved
    first = feed.entries[0]
    assert first.link.startswith("http://testserver/paper/") and first.id.startswith("tag:paperscope,")
    assert "Why: close to" in first.summary and first.authors
    assert [link.href for link in first.links] == [first.link]
    assert "arXiv: https://arxiv.org/abs/" in first.summary
    # reading the feed changes nothing; a wrong or revoked token finds nothing
    assert len(dg.select_digest(catalog, USER).items) == 4
    assert client.get("/feed/not-a-token.atom").status_code == 404
    store.revoke_feed_token(catalog, USER, "graphs")
    assert client.get(url.replace("http://testserver", "")).status_code == 404


def test_cli_dry_run_and_send(catalog, smtp):
    import json

    from typer.testing import CliRunner

    from paperscope.cli import app

    controller, inbox = smtp
    runner = CliRunner()
    db = ["--db", catalog.location]
    env = {"PAPERSCOPE_SMTP_HOST": "127.0.0.1", "PAPERSCOPE_SMTP_PORT": str(controller.port),
           "PAPERSCOPE_SMTP_SECURITY": "none", "PAPERSCOPE_DIGEST_TO": "reader@example.org",
           "PAPERSCOPE_CONFIG": "/nonexistent/config.toml"}
    res = runner.invoke(app, ["digest", "--dry-run", "--json", *db], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["dry_run"] and len(data["items"]) == 4 and data["smtp"]["port"] == controller.port
    assert inbox.messages == []
    res = runner.invoke(app, ["digest", "--send", *db], env=env)
    assert res.exit_code == 0 and "sent 4 papers to reader@example.org" in res.stdout
    res = runner.invoke(app, ["digest", "--send", *db], env=env)
    assert res.exit_code == 0 and "nothing sent" in res.stdout and len(inbox.messages) == 1
    res = runner.invoke(app, ["digest", "--feed-url", "--tag", "graphs", "--base-url", "https://me.example.org", *db], env=env)
    assert res.stdout.strip().startswith("https://me.example.org/feed/") and res.stdout.strip().endswith(".atom")


# ============================================================================================ a server's users


PASSWORD = "correct horse battery"
GCN, GAT, DDPM = (t for t, *_ in OLD)


@pytest.fixture()
def server_catalog(catalog_url):
    """A server's catalogue (accounts): yesterday's papers; alice reads about graphs, bob about
    diffusion; carol has no library; no digest was ever sent."""
    from paperscope.accounts import Accounts

    catalog = Catalog.open(catalog_url)
    catalog.ingest("yesterday.jsonl", "tabular", "h1", records(OLD))
    embed_what_is_there(catalog)
    ids = {p["title"]: p["id"] for p in catalog.iter_papers()}
    accounts = Accounts(catalog)
    users = {name: accounts.create_user(name, PASSWORD, f"{name}@example.org") for name in ("alice", "bob", "carol")}
    lib.save(catalog, users["alice"].id, ids[GCN], tags=["graphs"])
    lib.save(catalog, users["bob"].id, ids[DDPM], tags=["generative"])
    catalog.users, catalog.accounts = users, accounts
    yield catalog
    catalog.close()


def cli_digest(catalog, smtp_port: int, *args: str):
    from typer.testing import CliRunner

    from paperscope.cli import app

    env = {"PAPERSCOPE_SMTP_HOST": "127.0.0.1", "PAPERSCOPE_SMTP_PORT": str(smtp_port), "PAPERSCOPE_SMTP_SECURITY": "none",
           "PAPERSCOPE_SMTP_FROM": "digest@example.org", "PAPERSCOPE_BASE_URL": "https://papers.example.org",
           "PAPERSCOPE_CONFIG": "/nonexistent/config.toml", "PAPERSCOPE_DIGEST_TO": "", "PAPERSCOPE_USER": ""}
    return CliRunner().invoke(app, ["digest", *args, "--db", catalog.location], env=env)


def received(inbox, start: int = 0) -> dict[str, list[str]]:
    """recipient -> the titles of the digest they received (in order), for messages from ``start`` on."""
    out = {}
    for _, rcpts, raw in inbox.messages[start:]:
        msg = email.message_from_bytes(raw, policy=policy.default)
        text = next(p.get_content() for p in msg.iter_parts() if p.get_content_type() == "text/plain")
        assert msg["To"] == rcpts[0]
        out[rcpts[0]] = [line.split(". ", 1)[1] for line in text.splitlines() if line[:1].isdigit() and ". " in line]
    return out


def test_a_server_sends_each_user_their_own_digest_once(server_catalog, smtp):
    import json

    catalog, (controller, inbox) = server_catalog, smtp
    port = controller.port
    dry = cli_digest(catalog, port, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    parts = {d["username"]: d for d in json.loads(dry.stdout)["digests"]}
    assert set(parts) == {"alice", "bob"}                       # carol has no library: no digest
    assert parts["alice"]["to"] == "alice@example.org" and parts["bob"]["to"] == "bob@example.org"
    assert [i["title"] for i in parts["alice"]["items"]][0] == GAT   # ranked for her graphs
    assert inbox.messages == []

    # the first run: each user their own papers (what they saved is not offered), at their own address
    first = cli_digest(catalog, port, "--send")
    assert first.exit_code == 0, first.output
    assert "alice: sent 2 papers to alice@example.org" in first.stdout and "bob: sent 2 papers to bob@example.org" in first.stdout
    got = received(inbox)
    assert set(got) == {"alice@example.org", "bob@example.org"}
    assert got["alice@example.org"][0] == GAT and set(got["alice@example.org"]) == {GAT, DDPM}
    assert set(got["bob@example.org"]) == {GCN, GAT}

    # today's papers: alice's digest alone first, then the whole run; each state is the user's own
    after_a_second()
    catalog.ingest("today.jsonl", "tabular", "h2", records(NEW))
    only_alice = cli_digest(catalog, port, "--send", "--user", "alice")
    assert only_alice.exit_code == 0 and "sent 4 papers to alice@example.org" in only_alice.stdout
    got = received(inbox, 2)
    assert list(got) == ["alice@example.org"]
    assert set(got["alice@example.org"]) == {t for t, *_ in NEW}
    assert got["alice@example.org"][0] in {"How Powerful are Graph Neural Networks?", "Inductive Representation Learning on Large Graphs"}
    everyone = cli_digest(catalog, port, "--send")
    assert everyone.exit_code == 0, everyone.output
    assert "alice: nothing sent" in everyone.stdout and "bob: sent 4 papers to bob@example.org" in everyone.stdout
    got = received(inbox, 3)
    assert list(got) == ["bob@example.org"]
    assert got["bob@example.org"][0] == "Score-Based Generative Modeling through Stochastic Differential Equations"

    # nothing is sent twice, whoever runs it and however often
    again = cli_digest(catalog, port, "--send")
    assert again.exit_code == 0 and again.stdout.count("nothing sent") == 2 and len(inbox.messages) == 4
    history = json.loads(cli_digest(catalog, port, "--history", "--json").stdout)
    assert sorted((h["username"], h["recipient"], h["papers"]) for h in history) == [
        ("alice", "alice@example.org", 2), ("alice", "alice@example.org", 4),
        ("bob", "bob@example.org", 2), ("bob", "bob@example.org", 4)]


def test_a_user_without_an_address_does_not_stop_the_others(server_catalog, smtp):
    catalog, (controller, inbox) = server_catalog, smtp
    port = controller.port
    erin = catalog.accounts.create_user("erin", PASSWORD)                  # no e-mail address
    frank = catalog.accounts.create_user("frank", PASSWORD, "frank@example.org")
    ids = {p["title"]: p["id"] for p in catalog.iter_papers()}
    lib.save(catalog, erin.id, ids[GAT])
    lib.save(catalog, frank.id, ids[GAT])
    catalog.accounts.set_active("frank", False)                            # disabled: no digest
    res = cli_digest(catalog, port, "--send")
    assert res.exit_code == 1
    assert "erin: not sent: erin has no e-mail address" in res.output and "1 of 3 digests were not sent" in res.output
    assert sorted(r[0] for _, r, _ in inbox.messages) == ["alice@example.org", "bob@example.org"]
    # one user's digest can go to an address given for them; erin's is then sent, once
    res = cli_digest(catalog, port, "--send", "--user", "erin", "--to", "erin@elsewhere.example.org")
    assert res.exit_code == 0 and "sent 2 papers to erin@elsewhere.example.org" in res.stdout
    assert cli_digest(catalog, port, "--send", "--user", "erin", "--to", "erin@elsewhere.example.org").stdout.startswith("nothing sent")
    # clear one-line errors
    for args, message in [(["--user", "frank"], "frank is disabled"), (["--user", "nobody"], "no user named 'nobody'"),
                          (["--send", "--to", "me@example.org"], "add --user NAME"), (["--feed-url"], "add --user NAME"),
                          (["--since", "someday"], "not a date")]:
        res = cli_digest(catalog, port, *args)
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, (args, res.output)
    assert len(inbox.messages) == 3
