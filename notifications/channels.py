"""Delivery channels: a folder of .eml files (the default) and SMTP."""
from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from lifecycle import clock
from notifications.render import Rendered

SENDER = os.environ.get("STARFUND_MAIL_FROM", "starfund@kexie.example.org")


def message_id(dedupe_key: str) -> str:
    """A stable Message-ID from the dedupe key, so a resent message is recognisably the same."""
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "." for ch in dedupe_key)
    return f"<{safe}@starfund>"


def build(recipient: str, rendered: Rendered, dedupe_key: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = recipient
    msg["Subject"] = rendered.subject
    msg["Message-ID"] = message_id(dedupe_key)
    msg["Date"] = format_datetime(clock.now().astimezone())
    msg.set_content(rendered.body)
    if rendered.html:
        msg.add_alternative(rendered.html, subtype="html")
    return msg


class Channel(Protocol):
    def deliver(self, msg: EmailMessage, dedupe_key: str) -> None: ...


class FileChannel:
    """Writes each message to `<folder>/<dedupe key>.eml`; the same key overwrites, never doubles."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def deliver(self, msg: EmailMessage, dedupe_key: str) -> None:
        name = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in dedupe_key)
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(bytes(msg))
        tmp.replace(self.folder / f"{name}.eml")


class SmtpChannel:
    """Sends through an SMTP server; the password comes only from STARFUND_SMTP_PASSWORD."""

    def __init__(self, host: str, port: int = 25, starttls: bool = False,
                 user: str | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.starttls, self.user, self.timeout = \
            host, port, starttls, user, timeout

    def deliver(self, msg: EmailMessage, dedupe_key: str) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, os.environ.get("STARFUND_SMTP_PASSWORD", ""))
            smtp.send_message(msg)
