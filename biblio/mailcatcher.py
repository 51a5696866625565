"""The demo's mail catcher: a loopback SMTP server that keeps every message in a Maildir.

``biblio demo`` runs one and points ``[mail]`` at it, so the join flow sends real email
(through the outbox, over SMTP) that goes nowhere else; ``[demo] mailbox`` names the
Maildir, which owners read at ``/-/admin/mail`` (:func:`caught`). aiosmtpd speaks
SMTP; the standard library's :mod:`mailbox` writes one file per message, moved into
place when whole, so the web can read the folder while the catcher writes it.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

#: Messages :func:`caught` reads at most (newest first).
MAX_SHOWN = 200


class _Keeper:
    """aiosmtpd handler: every message accepted goes into the Maildir."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        box = mailbox.Maildir(self.folder, create=True)
        box.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now (aiosmtpd needs one named, not 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MailCatcher:
    """Start and stop the catcher on loopback; ``port`` is where it listens."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.folder, self.host = Path(folder), host
        self.port = port or free_port(host)
        self._controller: Controller | None = None

    def start(self) -> MailCatcher:
        mailbox.Maildir(self.folder, create=True)  # exists (and reads as empty) at once
        self._controller = Controller(_Keeper(self.folder), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Caught:
    """One caught message, as the owners' page shows it."""

    id: str
    received: datetime
    sender: str
    to: str
    subject: str
    body: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received": self.received.isoformat().replace("+00:00", "Z"),
            "from": self.sender,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
        }


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    return str(part.get_content()).replace("\r\n", "\n")


def caught(folder: str | Path, limit: int = MAX_SHOWN) -> list[Caught]:
    """The messages in the Maildir ``folder``, newest first (none if it does not exist)."""
    path = Path(folder)
    if not path.is_dir():
        return []
    box = mailbox.Maildir(path, create=False)
    found = []
    for key in box.iterkeys():  # (iterating a mailbox yields messages, not keys)
        try:
            kept = box.get_message(key)
        except (KeyError, FileNotFoundError):  # moved or removed while listed
            continue
        msg = email.message_from_bytes(kept.as_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(
            Caught(
                id=key,
                received=datetime.fromtimestamp(kept.get_date(), UTC),
                sender=str(msg.get("From", "")),
                to=str(msg.get("To", "")),
                subject=str(msg.get("Subject", "")),
                body=_body(msg),
            )
        )
    found.sort(key=lambda m: (m.received, m.id), reverse=True)
    return found[:limit]
