"""``biblio owners`` and ``biblio mail``: owner accounts, the digest, the outbox.

``biblio owners add EMAIL`` prompts twice for a password (or reads one line
from standard input with ``--password-stdin``); there is no default password
and short ones are refused. ``biblio owners list``, ``biblio owners digest``
(queue and send the reminder digest now) and ``biblio mail flush`` (send every
pending message now, ``--retry-failed`` also re-queues parked ones), ``biblio mail
list`` (the outbox, newest first, with errors) and ``biblio mail show ID``. A refused
account change, or a message that could not be sent, exits 1 with one line.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.engine import Engine

from biblio import mail
from biblio.cli import context
from biblio.membership import digests, owners
from biblio.settings import Settings


def _open() -> tuple[Settings, Engine]:
    settings = context.load_settings()
    return settings, context.open_engine(settings)


@click.group("owners")
def owners_cli() -> None:
    """Owner accounts of the owners' area (/-/admin/)."""


@owners_cli.command("add")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
def add_command(email: str, password_stdin: bool) -> None:
    """Create an owner account; the password is prompted for (twice)."""
    _, engine = _open()
    try:
        owner = owners.create_owner(engine, email, _read_password(password_stdin))
    except owners.OwnerError as exc:
        context.fail(str(exc))
    click.echo(f"owner {owner.email} created")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@owners_cli.command("passwd")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new password from the first line of standard input.",
)
def passwd_command(email: str, password_stdin: bool) -> None:
    """Set a new password for an owner (unlocks the account, ends its sessions)."""
    _, engine = _open()
    try:
        owners.set_password(engine, email, _read_password(password_stdin))
    except owners.OwnerError as exc:
        context.fail(str(exc))
    click.echo(f"password of {owners.normalize_email(email)} changed")


@owners_cli.command("remove")
@click.argument("email")
@click.confirmation_option(prompt="Remove this owner account?")
def remove_command(email: str) -> None:
    """Remove an owner account (the audit log keeps its history)."""
    _, engine = _open()
    try:
        owners.remove_owner(engine, email)
    except owners.OwnerError as exc:
        context.fail(str(exc))
    click.echo(f"owner {owners.normalize_email(email)} removed")


@owners_cli.command("list")
def list_command() -> None:
    """List owner accounts."""
    _, engine = _open()
    for owner in owners.list_owners(engine):
        last = f"{owner.last_login_at:%Y-%m-%d %H:%M}" if owner.last_login_at else "never"
        click.echo(f"{owner.email}\tcreated {owner.created_at:%Y-%m-%d}\tlast login {last}")


@owners_cli.command("digest")
def digest_command() -> None:
    """Email owners the join requests pending more than [join] reminder_days, now."""
    settings, engine = _open()
    queued = digests.digest(engine, settings, owners.owner_emails(engine))
    mail.wait_for_background()
    if queued:
        click.echo(f"digest queued for {queued} owner(s); outbox: {mail.outbox_counts(engine)}")
    else:
        click.echo("no overdue requests (or no owners); nothing sent")


@click.group("mail")
def mail_cli() -> None:
    """The email outbox."""


@mail_cli.command("flush")
@click.option("--retry-failed", is_flag=True, help="Also re-queue messages parked as failed.")
def flush_command(retry_failed: bool) -> None:
    """Send every pending message now, ignoring backoff."""
    settings, engine = _open()
    if retry_failed:
        click.echo(f"{mail.retry_failed(engine)} parked message(s) re-queued")
    if not settings["mail"]["enabled"]:
        click.echo("mail is disabled ([mail] enabled = false); messages stay queued")
        return
    result = mail.deliver_pending(engine, settings, force=True)
    click.echo(f"outbox: {result.summary()}")
    if result.failed:
        context.fail(
            f"{result.failed} delivery attempt(s) failed through SMTP "
            f"{settings['mail']['host']}:{settings['mail']['port']}"
        )


@mail_cli.command("list")
@click.option(
    "--status", type=click.Choice(["pending", "sent", "failed"]), default=None, help="Only these."
)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def list_mail_command(status: str | None, limit: int) -> None:
    """List the outbox, newest first: id, status, when, recipient, subject, last error."""
    settings, engine = _open()
    rows = mail.messages(engine, status=status, limit=limit)
    for row in rows:
        error = f"\t{row['last_error']}" if row["last_error"] and row["status"] != "sent" else ""
        click.echo(
            f"{row['id']}\t{row['status']}\t{row['created_at']:%Y-%m-%d %H:%M}\t"
            f"{row['to_addr']}\t{row['subject']}{error}"
        )
    counts = mail.outbox_counts(engine)
    click.echo(
        f"{counts['sent']} sent, {counts['pending']} pending, {counts['failed']} failed; "
        "`biblio mail show ID` prints one"
        + (
            f"; the demo's catcher keeps copies in {settings['demo']['mailbox']}"
            if settings["demo"]["mailbox"]
            else ""
        )
    )


@mail_cli.command("show")
@click.argument("message_id", type=int)
def show_mail_command(message_id: int) -> None:
    """Print one outbox message as it was (or will be) sent."""
    _, engine = _open()
    row = mail.message(engine, message_id)
    if row is None:
        context.fail(f"no message {message_id} in the outbox")
    click.echo(f"To: {row['to_addr']}\nSubject: {row['subject']}\nStatus: {row['status']}")
    if row["last_error"]:
        click.echo(f"Last error: {row['last_error']}")
    click.echo("\n" + row["body"].rstrip("\n"))


def add_commands(group: click.Group) -> None:
    """Add the ``owners`` and ``mail`` groups to the ``biblio`` group."""
    group.add_command(owners_cli)
    group.add_command(mail_cli)
