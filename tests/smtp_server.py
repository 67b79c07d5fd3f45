"""A real SMTP server (aiosmtpd) on loopback for the delivery tests, and the options that point
`notify send` at it. Its handler keeps what it accepts and misbehaves as a test tells it to."""
from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts, as (recipients, message).

    refuse:   addresses answered 550 at RCPT, always.
    temp:     "greeting", "MAIL", "RCPT" or "DATA": answer 421/451/450/451 there.
    greylist: addresses answered 450 at RCPT (while `temp` is "greylist").
    hang_at:  "greeting", "MAIL", "RCPT" or "DATA": stop answering there until
              `release` is set (only that session hangs; the server takes new
              connections meanwhile); what was hung on is kept in `hung`.
    drop:     this many times, take a message and close the connection before answering.
    """

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.messages: list = []
        self.refuse: set[str] = set(refuse)
        self.temp: str | None = None
        self.greylist: set[str] = set()
        self.hang_at: str | None = None
        self.release = threading.Event()
        self.hung: list[str] = []
        self.drop = 0

    async def hang(self, what: str) -> None:
        self.hung.append(what)
        while not self.release.is_set():
            await asyncio.sleep(0.02)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.hang_at == "MAIL":
            await self.hang(address)
            return "451 4.3.0 lost"
        if self.temp == "MAIL":
            return "451 4.3.2 try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.hang_at == "RCPT":
            await self.hang(address)
            return "451 4.3.0 lost"
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        if self.temp == "RCPT" or (self.temp == "greylist" and address in self.greylist):
            return "450 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        if self.hang_at == "DATA":
            await self.hang(msg["Message-ID"])
            return "451 4.3.0 lost"     # the server lost it: re-sending it is right
        if self.temp == "DATA":
            return "451 4.3.0 queue full, try again later"
        self.messages.append((list(envelope.rcpt_tos), msg))
        if self.drop:
            self.drop -= 1
            server.transport.close()        # took it, but the answer never leaves
        return "250 Message accepted"

    def ids(self) -> list[str]:
        return [m["Message-ID"] for _, m in self.messages]


class _Session(SMTP):
    """aiosmtpd's session, with a greeting the handler can refuse (421) or withhold."""

    async def _handle_client(self) -> None:
        handler = self.event_handler
        if handler.temp == "greeting":
            await self.push("421 4.3.2 too busy, try again later")
            self.transport.close()
            return
        if handler.hang_at == "greeting":
            await handler.hang("greeting")
        await super()._handle_client()


class _Controller(Controller):
    def factory(self):
        return _Session(self.handler, **self.SMTP_kwargs)


def serve(inbox: Inbox, port: int, **smtp_options) -> Controller:
    """Start the server on 127.0.0.1:port (smtp_options: authenticator=, tls_context=, ...)."""
    c = _Controller(inbox, hostname="127.0.0.1", port=port, **smtp_options)
    c.start()
    return c


def login_only(user: str, password: str):
    """An aiosmtpd authenticator that lets in this user with this password, and nobody else."""
    def check(server, session, envelope, mechanism, data) -> AuthResult:
        return AuthResult(success=isinstance(data, LoginPassword) and (
            data.login, data.password) == (user.encode(), password.encode()))
    return check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_args(port: int) -> list[str]:
    """The options of `notify send` that deliver to the test server."""
    return ["--channel", "smtp", "--smtp-host", "127.0.0.1", "--smtp-port", str(port)]
