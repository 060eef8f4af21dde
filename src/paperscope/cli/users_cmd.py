"""`paperscope users add|list|set-admin|invite|passwd|reset-link|disable|enable|delete|token|signup`."""

from __future__ import annotations

import os
from typing import Optional

import typer

from paperscope.cli.app import DbOption, JsonOption, app, console, fail, print_json

users_app = typer.Typer(help="Accounts of a server (server mode: `serve --accounts`, or a PostgreSQL catalogue).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")


def _accounts(db: Optional[str]):
    from paperscope.accounts import Accounts
    from paperscope.cli.catalog_cmd import open_catalog

    return Accounts(open_catalog(db))


def _password(given: Optional[str], prompt: str = "Password") -> str:
    if given:
        return given
    from_env = os.environ.get("PAPERSCOPE_PASSWORD")
    if from_env:
        return from_env
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)


def _run(action):
    from paperscope.accounts import AccountError

    try:
        return action()
    except AccountError as exc:
        fail(str(exc))


@users_app.command("add")
def add(
    username: str = typer.Argument(..., help="User name (letters, digits, '.', '_', '-')."),
    email: Optional[str] = typer.Option(None, help="Email address (for password resets)."),
    admin: bool = typer.Option(False, "--admin", help="Make an administrator (ingests sources, manages users)."),
    password: Optional[str] = typer.Option(None, help="Password (default: $PAPERSCOPE_PASSWORD, else asked)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Create an account."""
    accounts = _accounts(db)
    user = _run(lambda: accounts.create_user(username, _password(password), email, is_admin=admin))
    if as_json:
        print_json(user.as_dict())
    else:
        console.print(f"created {'administrator' if user.is_admin else 'user'} {user.username}", highlight=False)


@users_app.command("list")
def list_users(db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """Every account, with its role and last sign-in."""
    accounts = _accounts(db)
    users = accounts.list_users()
    if as_json:
        print_json({"signup": accounts.signup_mode(), "users": [u.as_dict() for u in users]})
        return
    from rich.table import Table

    table = Table("user", "email", "role", "active", "last sign-in", "created")
    for u in users:
        table.add_row(u.username, u.email or "", "admin" if u.is_admin else "user", "yes" if u.is_active else "no",
                      (u.last_login_at or "never")[:16], u.created_at[:10])
    console.print(table)
    console.print(f"sign-up: {accounts.signup_mode()}", highlight=False)


@users_app.command("set-admin")
def set_admin(
    username: str,
    revoke: bool = typer.Option(False, "--revoke", help="Take the administrator role away instead."),
    db: Optional[str] = DbOption,
) -> None:
    """Make a user an administrator (or, with --revoke, not)."""
    accounts = _accounts(db)
    user = _run(lambda: accounts.set_admin(username, not revoke))
    console.print(f"{user.username} is {'an administrator' if user.is_admin else 'not an administrator'}", highlight=False)


@users_app.command("invite")
def invite(
    email: Optional[str] = typer.Argument(None, help="Address to mail the invitation to (optional)."),
    admin: bool = typer.Option(False, "--admin", help="The account made with it is an administrator."),
    base_url: Optional[str] = typer.Option(None, "--base-url", envvar="PAPERSCOPE_BASE_URL",
                                           help="The server's address as users open it, e.g. https://papers.example.org"),
    db: Optional[str] = DbOption,
) -> None:
    """Print a one-time sign-up link (and mail it when an address is given and SMTP is set up)."""
    accounts = _accounts(db)
    link = _run(lambda: accounts.invite(None, email, make_admin=admin, base_url=base_url))
    typer.echo(link)


@users_app.command("passwd")
def passwd(username: str, password: Optional[str] = typer.Option(None, help="New password (default: asked)."),
           db: Optional[str] = DbOption) -> None:
    """Set a user's password (and sign them out everywhere)."""
    accounts = _accounts(db)
    user = _run(lambda: accounts.set_password(username, _password(password, "New password")))
    console.print(f"password of {user.username} changed; their sessions are signed out", highlight=False)


@users_app.command("reset-link")
def reset_link(username: str,
               base_url: Optional[str] = typer.Option(None, "--base-url", envvar="PAPERSCOPE_BASE_URL",
                                                      help="The server's address as users open it."),
               db: Optional[str] = DbOption) -> None:
    """Print a one-time password-reset link for a user (when the server cannot send mail)."""
    accounts = _accounts(db)
    user = _run(lambda: accounts.require_user(username))
    typer.echo(_run(lambda: accounts.reset_link(user, base_url)))


@users_app.command("disable")
def disable(username: str, db: Optional[str] = DbOption) -> None:
    """Stop an account from signing in (its sessions end; its data stays)."""
    user = _run(lambda: _accounts(db).set_active(username, False))
    console.print(f"{user.username} is disabled", highlight=False)


@users_app.command("enable")
def enable(username: str, db: Optional[str] = DbOption) -> None:
    """Let a disabled account sign in again."""
    user = _run(lambda: _accounts(db).set_active(username, True))
    console.print(f"{user.username} is enabled", highlight=False)


@users_app.command("token")
def token(username: str, name: str = typer.Option("cli", help="What the token is for."),
          db: Optional[str] = DbOption) -> None:
    """Make an API token for a user (printed once): `Authorization: Bearer <token>`, or ?token= on feeds."""
    accounts = _accounts(db)
    user = _run(lambda: accounts.require_user(username))
    typer.echo(accounts.create_token(user, name)[1])


@users_app.command("signup")
def signup(mode: str = typer.Argument(..., help="open, invite or closed"), db: Optional[str] = DbOption) -> None:
    """Who may create an account on the web: anyone, people invited, or nobody."""
    accounts = _accounts(db)
    _run(lambda: accounts.set_signup_mode(mode))
    console.print(f"sign-up is now {mode}", highlight=False)


@users_app.command("delete")
def delete(username: str, yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
           db: Optional[str] = DbOption) -> None:
    """Delete an account and all of its data (agenda, library, feeds, sessions, tokens)."""
    accounts = _accounts(db)
    _run(lambda: accounts.require_user(username))
    if not yes and not typer.confirm(f"Delete {username} and all their data?"):
        raise typer.Exit(1)
    removed = _run(lambda: accounts.delete_user(username))
    console.print(f"deleted {username}: " + ", ".join(f"{n} from {t}" for t, n in removed.items()), highlight=False)
