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
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Protocol

from lifecycle.core import clock
from lifecycle.core.errors import BadValue
from notifications.render import Letterhead, Rendered

PASSWORD_ENV = "STARFUND_SMTP_PASSWORD"


class PermanentError(Exception):
    """Retrying cannot help (broken template, address rejected): fail at once."""


class DeliveryError(Exception):
    """A delivery that failed for now, as the channel judged it (other exceptions: retry too).

    `in_doubt`: the message may have arrived (the server went silent after
    taking its text); it is not retried but left in doubt for an administrator.
    `ends_round`: the server, not this message, is at fault; the rest of the
    round is deferred untouched.
    """

    def __init__(self, message: str, *, in_doubt: bool = False, ends_round: bool = False) -> None:
        super().__init__(message)
        self.in_doubt, self.ends_round = in_doubt, ends_round


class LocalError(DeliveryError):
    """Our own side failed (disk full, folder missing, permission), not the receiver: the
    message was not delivered nor answered, so it costs no attempt; the round ends and every
    message in it is deferred, queued as it was."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ends_round=True)


DEFAULT_SENDER = Letterhead.address
"""The From address unless STARFUND_MAIL_FROM says otherwise (lifecycle.core.settings)."""


def message_id(dedupe_key: str, domain: str = "starfund") -> str:
    """A stable Message-ID from the dedupe key, so a resent message is recognisably the same."""
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "." for ch in dedupe_key)
    return f"<{safe}@{domain or 'starfund'}>"


def _address(name: str, address: str) -> str:
    """`"Display Name" <address>`, the name encoded when it is not ASCII."""
    if not name:
        return address
    return formataddr((name, address), charset="utf-8")


def build(recipient: str, rendered: Rendered, dedupe_key: str,
          sender: str | Letterhead = DEFAULT_SENDER) -> Message:
    """The MIME message (UTF-8; plain text, or plain + HTML alternatives, plus attachments).

    `sender` is the settings' letterhead (From with its display name, Reply-To,
    the Message-ID domain), or just the From address.
    Built with the compat32 MIME classes: about ten times faster than
    EmailMessage's header registry, which dominated delivery time.
    """
    head = sender if isinstance(sender, Letterhead) else Letterhead(address=sender)
    plain = MIMEText(rendered.body, "plain", "utf-8")
    if rendered.html:
        msg: Message = MIMEMultipart("alternative")
        msg.attach(plain)
        msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    else:
        msg = plain
    if rendered.attachments:
        text, msg = msg, MIMEMultipart("mixed")
        msg.attach(text)
        for a in rendered.attachments:
            main, _, sub = a.mime.partition("/")
            part = MIMEApplication(a.content, sub or "octet-stream") if main == "application" \
                else MIMEApplication(a.content)
            part.add_header("Content-Disposition", "attachment",
                            filename=a.filename if a.filename.isascii()
                            else ("utf-8", "", a.filename))
            msg.attach(part)
    subject = rendered.subject
    msg["From"] = _address(head.name, head.address)
    msg["To"] = recipient
    if head.reply_to:
        msg["Reply-To"] = head.reply_to
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    msg["Message-ID"] = message_id(dedupe_key, head.domain)
    msg["Date"] = format_datetime(clock.now().replace(tzinfo=clock.zone()))
    msg["X-Starfund-Key"] = dedupe_key
    return msg


class Channel(Protocol):
    def deliver(self, msg: Message, dedupe_key: str) -> None: ...


def file_name(dedupe_key: str) -> str:
    """The file channel's file of a message (erasure removes it)."""
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in dedupe_key) + ".eml"


class FileChannel:
    """Writes each message to `<folder>/<dedupe key>.eml`; the same key overwrites, never doubles."""

    def __init__(self, folder: str | Path, sender: str | Letterhead = DEFAULT_SENDER) -> None:
        self.folder, self.sender = Path(folder), sender
        self.folder.mkdir(parents=True, exist_ok=True)

    def deliver(self, msg: Message, dedupe_key: str) -> None:
        """Write the message whole or not at all: a failed write leaves no temporary file and
        is our side's failure (`LocalError`), never the message's."""
        target = self.folder / file_name(dedupe_key)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(bytes(msg))
            tmp.replace(target)
        except OSError as e:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the folder itself is gone or closed to us: there is no file to leave
            raise LocalError(f"cannot write to the outbox folder {self.folder}: "
                             f"{e.strerror or e}") from e

    def delivered(self, dedupe_key: str) -> bool:
        """Whether a message with this key is in the folder (settles a crashed send)."""
        return (self.folder / file_name(dedupe_key)).exists()

    def __repr__(self) -> str:
        return f"folder {self.folder}"


def _timed_out(error: BaseException | None) -> bool:
    """Whether a timeout is behind this error (smtplib wraps it in SMTPServerDisconnected)."""
    for _ in range(5):
        if error is None:
            return False
        if isinstance(error, TimeoutError):
            return True
        error = error.__cause__ or error.__context__
    return False


class _Session(smtplib.SMTP):
    """smtplib's client, which also knows whether the current message's text reached the server.

    After the server's 354 answer to DATA the next thing written is the message
    itself (ending in the lone dot). From the moment it is written until the
    server's final answer, a timeout or a lost connection leaves the message in
    doubt: the server may have taken it.
    """

    text_sent = False
    _after_data = False

    def putcmd(self, cmd: str, args: str = "") -> None:
        self._after_data = False
        super().putcmd(cmd, args)
        self._after_data = cmd.lower() == "data"

    def send(self, s: str | bytes) -> None:
        super().send(s)
        if self._after_data:  # only written after a 354: the message text
            self.text_sent = True


class SmtpChannel:
    """Sends through an SMTP server over one connection per round; the password only from the env.

    One outbox row has one recipient, so each message goes to exactly one
    address and every answer is about that recipient (the per-recipient
    classification below still reads smtplib's per-address answers). How an
    answer is treated:

    - 2xx: sent.
    - 5xx to MAIL, RCPT or DATA: permanent; the message fails at once.
    - 4xx to MAIL, RCPT (greylisting) or DATA: temporary; the message is retried
      with backoff, and the round goes on with the next message (the session
      is reset; 421 "closing" drops it and the next message reconnects).
    - A connection lost before the message's text was written: retried; the
      next message reconnects.
    - The session cannot be opened (refused, greeting not 220 (even 5xx), HELO,
      STARTTLS or login failed) or the server stops answering (`timeout` seconds
      for any one answer): the server or our settings are the trouble, not the
      message, so it is never a permanent failure. This message's attempt counts
      (retried with backoff), and the round ends at once: every further
      `deliver` raises `DeliveryError(ends_round=True)` without touching the
      server, and `delivery.drain` puts the rest of the round back in the queue
      unchanged. A hung server costs one timeout per round, not one per message.
    - A timeout or a lost connection after the message's text was written and
      before the server answered: `DeliveryError(in_doubt=True)`. The server may
      have taken it, so it is not re-sent automatically; it stays in doubt
      (`notify list --in-doubt`) until an administrator re-queues it. A re-sent
      copy carries the same Message-ID, so a receiver that got both can drop one.
    """

    def __init__(self, host: str, port: int = 25, starttls: bool = False,
                 user: str | None = None, timeout: float = 10.0, password: str | None = None,
                 sender: str | Letterhead = DEFAULT_SENDER) -> None:
        if not timeout > 0:
            raise BadValue(f"SMTP timeout must be more than 0 seconds, not {timeout!r}")
        self.host, self.port, self.starttls, self.user, self.timeout = \
            host, port, starttls, user, timeout
        self.sender = sender
        self.password = password if user else None
        if user and self.password is None:
            raise BadValue(f"SMTP user {user!r} given but {PASSWORD_ENV} is not set "
                             "(the password is only read from that environment variable)")
        self._smtp: _Session | None = None
        self._broken: str | None = None  # why this round is over, once it is

    def open(self) -> None:
        """Start a delivery round: connect lazily on the first message."""
        self._broken = None

    def _connect(self) -> _Session:
        smtp = _Session(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:  # verify the server's certificate (system CAs, or SSL_CERT_FILE)
                smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo_or_helo_if_needed()
            if self.user:
                smtp.login(self.user, self.password or "")
        except Exception:
            smtp.close()
            raise
        return smtp

    def _silent(self) -> str:
        return f"SMTP server {self!r} stopped answering ({self.timeout:g} s timeout)"

    def _end_round(self, why: str) -> DeliveryError:
        self._broken = why
        self._drop()
        return DeliveryError(why, ends_round=True)

    def deliver(self, msg: Message, dedupe_key: str) -> None:
        if self._broken is not None:  # the server failed in this round: do not hammer it
            raise DeliveryError(f"not tried in this round: {self._broken}", ends_round=True)
        if self._smtp is None or self._smtp.sock is None:
            try:
                self._smtp = self._connect()
            except Exception as e:  # noqa: BLE001
                raise self._end_round(
                    f"{self._silent()} while opening the session" if _timed_out(e) else
                    f"SMTP session with {self!r} could not be opened: {_describe(e)}") from e
        smtp = self._smtp
        smtp.text_sent = False
        try:
            refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:  # every recipient refused, each with its code
            answers = "; ".join(f"{addr}: {code} {_text(resp)}"
                                for addr, (code, resp) in sorted(e.recipients.items()))
            codes = [code for code, _ in e.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentError(f"SMTP refused the recipient: {answers}") from e
            if 421 in codes:  # the server closed the session; the next message reconnects
                self._drop()
            raise DeliveryError(f"SMTP refused the recipient for now: {answers}") from e
        except smtplib.SMTPResponseException as e:  # an answer to MAIL or DATA
            answer = f"SMTP {e.smtp_code} {_text(e.smtp_error)}"
            if e.smtp_code >= 500:
                self._reset_after_error()
                raise PermanentError(answer) from e
            if e.smtp_code == 421:
                self._drop()
            raise DeliveryError(f"{answer} (temporary)") from e
        except Exception as e:  # noqa: BLE001 - a timeout, a lost connection, ...
            self._drop()
            doubt = " after the message was sent, before it answered" if smtp.text_sent else ""
            if _timed_out(e):
                self._broken = self._silent()
                raise DeliveryError(self._broken + doubt, in_doubt=smtp.text_sent,
                                    ends_round=True) from e
            raise DeliveryError(_describe(e) + doubt, in_doubt=smtp.text_sent) from e
        if refused:  # cannot happen with one recipient; never re-send to those who accepted it
            raise PermanentError(f"SMTP refused {sorted(refused)} but accepted the message for "
                                 "the other recipients; not sent again")

    def _reset_after_error(self) -> None:
        try:
            if self._smtp is not None and self._smtp.sock is not None:
                self._smtp.rset()
        except Exception:  # noqa: BLE001
            self._drop()

    def _drop(self) -> None:
        """Close the socket without a QUIT (which a hung server would make us wait for)."""
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                if self._smtp.sock is not None:
                    self._smtp.quit()
            except Exception:  # noqa: BLE001
                pass
            self._drop()

    def __repr__(self) -> str:
        return f"smtp://{self.user + '@' if self.user else ''}{self.host}:{self.port}" + \
            (" (STARTTLS)" if self.starttls else "")


def _text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def _describe(e: BaseException) -> str:
    if isinstance(e, smtplib.SMTPResponseException):
        return f"{type(e).__name__}: {e.smtp_code} {_text(e.smtp_error)}"
    return f"{type(e).__name__}: {e}"


def make(kind: str = "file", outbox: str | Path = "outbox", host: str | None = None,
         port: int = 25, starttls: bool = False, user: str | None = None,
         timeout: float = 10.0, password: str | None = None,
         sender: str | Letterhead = DEFAULT_SENDER) -> FileChannel | SmtpChannel:
    """The channel chosen by `--channel` (or STARFUND_CHANNEL) and its settings; the password
    and the sender come from the settings (STARFUND_SMTP_PASSWORD, STARFUND_MAIL_FROM)."""
    if kind == "file":
        return FileChannel(outbox, sender)
    if kind == "smtp":
        if not host:
            raise BadValue("--channel smtp needs --smtp-host (or STARFUND_SMTP_HOST)")
        return SmtpChannel(host, port, starttls, user, timeout, password, sender)
    raise BadValue(f"unknown channel {kind!r}: use file or smtp")
