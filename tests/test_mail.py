"""The outbox over real SMTP: aiosmtpd on loopback receives what biblio sends; a server
that is down leaves messages queued with backoff, and they go out once it is back."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner

from biblio import create_app, mail
from biblio import storage as st
from biblio.cli import cli
from tests.conftest import make_settings
from tests.smtp_server import SMTPServer, body, free_port

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path, zotero, smtp):
    return make_settings(
        tmp_path,
        zotero,
        mail={"host": "127.0.0.1", "port": smtp.port, "sender": "biblio@example.org"},
    )


@pytest.fixture(autouse=True)
def _join_mail_threads():
    yield
    mail.wait_for_background()


def queue(engine, to="reader@example.org", subject="Hello", text="Body text\n"):
    with st.transaction(engine) as conn:
        return mail.enqueue(conn, to, subject, text)


def test_pending_message_is_delivered_over_smtp(engine, settings, smtp):
    queue(engine, subject="Greetings ✉", text="Ünïcode body\nsecond line\n")
    result = mail.deliver_pending(engine, settings)
    assert result.sent == 1 and result.failed == 0
    [msg] = smtp.collector.wait_for(1)
    assert msg["To"] == "reader@example.org" and msg["From"] == "biblio@example.org"
    assert msg["Subject"] == "Greetings ✉"
    assert "Ünïcode body\nsecond line" in body(msg)
    [row] = mail.messages(engine)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
    assert mail.deliver_pending(engine, settings).sent == 0  # never sent twice


def test_subject_cannot_inject_headers(engine, settings, smtp):
    queue(engine, subject="Hi\r\nBcc: victim@example.org")
    mail.deliver_pending(engine, settings)
    [msg] = smtp.collector.wait_for(1)
    assert msg["Bcc"] is None and smtp.collector.envelopes[0][1] == ["reader@example.org"]


def test_server_down_keeps_message_and_retries_when_back(tmp_path, zotero, engine):
    port = free_port()  # nothing listens here yet
    conf = make_settings(tmp_path, zotero, mail={"host": "127.0.0.1", "port": port})
    queue(engine)
    first = mail.deliver_pending(engine, conf)
    assert first.sent == 0 and first.failed == 1
    [row] = mail.messages(engine)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"]
    assert row["next_attempt_at"] > st.utcnow()  # backoff: not due yet
    assert mail.deliver_pending(engine, conf).failed == 0  # not retried before it is due

    server = SMTPServer(port).start()
    try:
        later = st.utcnow() + timedelta(minutes=2)
        assert mail.deliver_pending(engine, conf, now=later).sent == 1
        [msg] = server.collector.wait_for(1)
        assert msg["Subject"] == "Hello"
    finally:
        server.stop()
    assert mail.messages(engine)[0]["status"] == "sent"


def test_backoff_grows_and_is_capped():
    assert mail.backoff(1) == timedelta(minutes=1)
    assert mail.backoff(3) == timedelta(minutes=4)
    assert mail.backoff(30) == timedelta(hours=6)


def test_after_max_attempts_message_is_parked_not_lost(tmp_path, zotero, engine):
    conf = make_settings(
        tmp_path, zotero, mail={"host": "127.0.0.1", "port": free_port(), "max_attempts": 2}
    )
    queue(engine)
    mail.deliver_pending(engine, conf, force=True)
    result = mail.deliver_pending(engine, conf, force=True)
    assert result.parked == 1
    [row] = mail.messages(engine)
    assert row["status"] == "failed" and row["attempts"] == 2
    assert mail.outbox_counts(engine)["failed"] == 1
    assert mail.retry_failed(engine) == 1
    assert mail.messages(engine)[0]["status"] == "pending"


def test_disabled_mail_keeps_messages_queued(tmp_path, zotero, engine, smtp):
    conf = make_settings(
        tmp_path, zotero, mail={"enabled": False, "host": "127.0.0.1", "port": smtp.port}
    )
    queue(engine)
    assert mail.deliver_pending(engine, conf, force=True).sent == 0
    assert mail.messages(engine)[0]["status"] == "pending"


def test_join_confirmation_arrives_after_commit(settings, synced, smtp):
    app = create_app(settings)
    client = app.test_client()
    token = TOKEN_RE.search(client.get("/join").get_data(as_text=True)).group(1)
    resp = client.post(
        "/join",
        data={
            "csrf_token": token,
            "name": "Grace <b>Bold</b>",
            "email": "grace@example.org",
            "zotero_user_id": "8100001",
            "reason": "I research library worker equity.",
            "prongs": ["worker-equity"],
            "consent": "yes",
        },
    )
    assert resp.status_code == 303
    [msg] = smtp.collector.wait_for(1)
    assert msg["To"] == "grace@example.org" and "was received" in msg["Subject"]
    status_path = resp.headers["Location"].split("?")[0]
    assert status_path in body(msg) and "Grace <b>Bold</b>" in body(msg)
    assert msg.get_content_type() == "text/plain"


def test_request_survives_mail_server_outage(tmp_path, zotero, synced):
    port = free_port()
    conf = make_settings(tmp_path, zotero, mail={"host": "127.0.0.1", "port": port})
    client = create_app(conf).test_client()
    token = TOKEN_RE.search(client.get("/join").get_data(as_text=True)).group(1)
    resp = client.post(
        "/join",
        data={
            "csrf_token": token,
            "name": "Hal",
            "email": "hal@example.org",
            "zotero_user_id": "8100002",
            "reason": "Pathways research please.",
            "consent": "yes",
        },
    )
    assert resp.status_code == 303  # the request is committed even though SMTP is down
    mail.wait_for_background()
    [row] = mail.messages(synced)
    assert row["status"] == "pending" and row["attempts"] == 1
    server = SMTPServer(port).start()
    try:
        assert mail.deliver_pending(synced, conf, force=True).sent == 1
        assert server.collector.wait_for(1)[0]["To"] == "hal@example.org"
    finally:
        server.stop()


def test_cli_mail_flush_and_owner_commands(tmp_path, zotero, smtp, engine):
    settings_file = tmp_path / "cli.toml"
    settings_file.write_text(
        f'[zotero]\nlibrary_id = {zotero.library.group_id}\nbase_url = "{zotero.url}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "biblio.sqlite3"}"\n'
        f'[mail]\nhost = "127.0.0.1"\nport = {smtp.port}\n',
        encoding="utf-8",
    )
    env = {"BIBLIO_SETTINGS": str(settings_file)}
    runner = CliRunner()
    queue(engine)
    result = runner.invoke(cli, ["mail", "flush"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output and len(smtp.collector.wait_for(1)) == 1

    short = runner.invoke(
        cli, ["owners", "add", "o@example.org", "--password-stdin"], input="short\n", env=env
    )
    assert short.exit_code == 1 and "too short" in short.output
    added = runner.invoke(
        cli,
        ["owners", "add", "O@Example.org"],
        input="a long enough pass\na long enough pass\n",
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "owner o@example.org created" in added.output
    dup = runner.invoke(
        cli,
        ["owners", "add", "o@example.org", "--password-stdin"],
        input="another long password\n",
        env=env,
    )
    assert dup.exit_code == 1 and "already exists" in dup.output
    listed = runner.invoke(cli, ["owners", "list"], env=env)
    assert "o@example.org" in listed.output and "never" in listed.output
    with st.connect(engine) as conn:
        hashed = conn.execute(st.owners.select()).mappings().first()["password_hash"]
    assert hashed.startswith("scrypt:") and "long enough" not in hashed


def test_crashed_sender_lease_expires_and_message_is_retried(engine, settings, smtp):
    queue(engine)
    [row] = mail.messages(engine)
    # A sender claims the message and dies before sending: the claim is a lease.
    assert mail._claim(engine, row, st.utcnow())
    assert mail.deliver_pending(engine, settings).sent == 0  # still leased
    after_lease = st.utcnow() + mail.LEASE + timedelta(seconds=1)
    assert mail.deliver_pending(engine, settings, now=after_lease).sent == 1
    assert len(smtp.collector.wait_for(1)) == 1


def test_scheduler_has_digest_and_outbox_jobs(engine, settings):
    from biblio.membership.digests import DIGEST_JOB_ID, OUTBOX_JOB_ID
    from biblio.sync.schedule import build_scheduler

    scheduler = build_scheduler(engine, settings, blocking=False, run_now=False)
    ids = {job.id for job in scheduler.get_jobs()}
    assert {DIGEST_JOB_ID, OUTBOX_JOB_ID} <= ids


def test_cli_owners_digest(tmp_path, zotero, smtp, synced):
    from sqlalchemy import insert

    settings_file = tmp_path / "cli.toml"
    settings_file.write_text(
        f'[zotero]\nlibrary_id = {zotero.library.group_id}\nbase_url = "{zotero.url}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "biblio.sqlite3"}"\n'
        f'[mail]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
        '[web]\npublic_url = "https://biblio.example.org"\n',
        encoding="utf-8",
    )
    env = {"BIBLIO_SETTINGS": str(settings_file)}
    runner = CliRunner()
    assert "nothing sent" in runner.invoke(cli, ["owners", "digest"], env=env).output
    runner.invoke(
        cli,
        ["owners", "add", "o@example.org", "--password-stdin"],
        input="a long enough pass\n",
        env=env,
    )
    old = st.utcnow() - timedelta(days=30)
    with st.transaction(synced) as conn:
        conn.execute(
            insert(st.join_requests).values(
                token_hash="x" * 64,
                status="pending",
                name="Old Request",
                email="old@example.org",
                zotero_user_id=8200001,
                affiliation="",
                prongs=[],
                reason="Waiting a long time.",
                created_at=old,
                updated_at=old,
            )
        )
    result = runner.invoke(cli, ["owners", "digest"], env=env)
    assert result.exit_code == 0 and "digest queued for 1 owner" in result.output
    [msg] = smtp.collector.wait_for(1)
    assert msg["To"] == "o@example.org" and "old@example.org" in body(msg)
    assert "https://biblio.example.org/-/admin/?status=pending" in body(msg)


def test_owners_hear_of_a_new_request_without_its_details(tmp_path, zotero, synced, smtp):
    from biblio.membership import owners

    conf = make_settings(
        tmp_path,
        zotero,
        mail={"host": "127.0.0.1", "port": smtp.port},
        web={"public_url": "https://biblio.example.org/"},
    )
    owners.create_owner(synced, "owner-one@example.org", "a long owner passphrase")
    owners.create_owner(synced, "owner-two@example.org", "another long passphrase")
    client = create_app(conf).test_client()
    token = TOKEN_RE.search(client.get("/join").get_data(as_text=True)).group(1)
    resp = client.post(
        "/join",
        data={
            "csrf_token": token,
            "name": "Ida",
            "email": "ida@example.org",
            "zotero_user_id": "8100003",
            "reason": "A private reason <script>x</script>",
            "consent": "yes",
        },
    )
    assert resp.status_code == 303
    received = smtp.collector.wait_for(3)
    to_owners = sorted((m for m in received if m["To"] != "ida@example.org"), key=lambda m: m["To"])
    assert [m["To"] for m in to_owners] == ["owner-one@example.org", "owner-two@example.org"]
    text = body(to_owners[0])
    assert "Ida asked to join" in text
    assert "https://biblio.example.org/-/admin/requests/" in text
    assert "ida@example.org" not in text and "private reason" not in text


def test_owner_notification_can_be_switched_off(tmp_path, zotero, synced):
    from biblio.membership import owners

    conf = make_settings(tmp_path, zotero, mail={"enabled": False}, join={"notify_owners": False})
    owners.create_owner(synced, "owner@example.org", "a long owner passphrase")
    client = create_app(conf).test_client()
    token = TOKEN_RE.search(client.get("/join").get_data(as_text=True)).group(1)
    resp = client.post(
        "/join",
        data={
            "csrf_token": token,
            "name": "Jo",
            "email": "jo@example.org",
            "zotero_user_id": "8100004",
            "reason": "Worker equity research.",
            "consent": "yes",
        },
    )
    assert resp.status_code == 303
    assert [m["to_addr"] for m in mail.messages(synced)] == ["jo@example.org"]


def test_waiting_for_senders_while_others_start_them_never_fails(engine, settings, smtp):
    """Requests start senders (``send_soon``) and wait for them at once, in many threads,
    as gunicorn's threads do under a burst of join submissions: a waiter must never meet
    a sender that is registered but not yet started."""
    for n in range(24):
        queue(engine, to=f"reader{n}@example.org")
    errors: list[BaseException] = []
    start = threading.Barrier(24)

    def request() -> None:
        try:
            start.wait()
            for _ in range(5):
                mail.send_soon(engine, settings)
                mail.wait_for_background(5)
        except BaseException as exc:  # noqa: BLE001 (the test reports whatever escaped)
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    mail.wait_for_background()
    assert {m["status"] for m in mail.messages(engine)} == {"sent"}
