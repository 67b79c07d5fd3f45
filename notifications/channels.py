"""Delivery channels: a folder of .eml files (the default) and SMTP.

Both build the same message: From, To, Subject, a Message-ID derived from the
dedupe key (so a message that had to be re-sent is recognisably the same one),
a plain-text part and, when the template has one, an HTML alternative.
"""
from __future__ import annotations

import os
import smtplib
import ssl
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from lifecycle import clock
from notifications.outbox import PermanentError
from notifications.render import Rendered

PASSWORD_ENV = "STARFUND_SMTP_PASSWORD"


def sender() -> str:
    return os.environ.get("STARFUND_MAIL_FROM", "starfund@kexie.example.org")


def message_id(dedupe_key: str) -> str:
    """A stable Message-ID from the dedupe key, so a resent message is recognisably the same."""
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "." for ch in dedupe_key)
    return f"<{safe}@starfund>"


def build(recipient: str, rendered: Rendered, dedupe_key: str) -> Message:
    """The MIME message (UTF-8; plain text, or plain + HTML alternatives).

    Built with the compat32 MIME classes: about ten times faster than
    EmailMessage's header registry, which dominated delivery time.
    """
    plain = MIMEText(rendered.body, "plain", "utf-8")
    if rendered.html:
        msg: Message = MIMEMultipart("alternative")
        msg.attach(plain)
        msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    else:
        msg = plain
    subject = rendered.subject
    msg["From"] = sender()
    msg["To"] = recipient
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    msg["Message-ID"] = message_id(dedupe_key)
    msg["Date"] = format_datetime(clock.now().replace(tzinfo=clock._zone()))
    msg["X-Starfund-Key"] = dedupe_key
    return msg


class Channel(Protocol):
    def deliver(self, msg: Message, dedupe_key: str) -> None: ...


def _file_name(dedupe_key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in dedupe_key) + ".eml"


class FileChannel:
    """Writes each message to `<folder>/<dedupe key>.eml`; the same key overwrites, never doubles."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def deliver(self, msg: Message, dedupe_key: str) -> None:
        target = self.folder / _file_name(dedupe_key)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(bytes(msg))
        tmp.replace(target)

    def delivered(self, dedupe_key: str) -> bool:
        """Whether a message with this key is in the folder (settles a crashed send)."""
        return (self.folder / _file_name(dedupe_key)).exists()

    def __repr__(self) -> str:
        return f"folder {self.folder}"


class SmtpChannel:
    """Sends through an SMTP server over one connection per drain; the password only from the env.

    5xx answers (address rejected, message refused) are permanent failures; a
    server that is down or answers 4xx is retried later with backoff.
    """

    def __init__(self, host: str, port: int = 25, starttls: bool = False,
                 user: str | None = None, timeout: float = 10.0) -> None:
        self.host, self.port, self.starttls, self.user, self.timeout = \
            host, port, starttls, user, timeout
        self.password = os.environ.get(PASSWORD_ENV) if user else None
        if user and self.password is None:
            raise ValueError(f"SMTP user {user!r} given but {PASSWORD_ENV} is not set "
                             "(the password is only read from that environment variable)")
        self._smtp: smtplib.SMTP | None = None
        self._unreachable: Exception | None = None

    def open(self) -> None:
        """Start a delivery round: connect lazily on the first message."""
        self._unreachable = None

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:  # verify the server's certificate (system CAs, or SSL_CERT_FILE)
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
        except Exception:
            smtp.close()
            raise
        return smtp

    def deliver(self, msg: Message, dedupe_key: str) -> None:
        if self._unreachable is not None:  # the server is down for this round: do not hammer it
            raise ConnectionError(f"SMTP server unreachable in this round: {self._unreachable}")
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except Exception as e:
                self._unreachable = e
                raise
        try:
            refused = self._smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            raise PermanentError(f"SMTP refused the recipient: {e.recipients}") from e
        except smtplib.SMTPResponseException as e:
            if e.smtp_code >= 500:
                self._reset_after_error()
                raise PermanentError(f"SMTP {e.smtp_code}: {e.smtp_error!r}") from e
            self.close()
            raise
        except Exception:
            self.close()
            raise
        if refused:
            raise PermanentError(f"SMTP refused {sorted(refused)}")

    def _reset_after_error(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except Exception:  # noqa: BLE001
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except Exception:  # noqa: BLE001
                self._smtp.close()
            self._smtp = None

    def __repr__(self) -> str:
        return f"smtp://{self.user + '@' if self.user else ''}{self.host}:{self.port}" + \
            (" (STARTTLS)" if self.starttls else "")


def make(kind: str = "file", outbox: str | Path = "outbox", host: str | None = None,
         port: int = 25, starttls: bool = False, user: str | None = None,
         timeout: float = 10.0) -> FileChannel | SmtpChannel:
    """The channel chosen by `--channel` (or STARFUND_CHANNEL) and its settings."""
    if kind == "file":
        return FileChannel(outbox)
    if kind == "smtp":
        if not host:
            raise ValueError("--channel smtp needs --smtp-host (or STARFUND_SMTP_HOST)")
        return SmtpChannel(host, port, starttls, user, timeout)
    raise ValueError(f"unknown channel {kind!r}: use file or smtp")
