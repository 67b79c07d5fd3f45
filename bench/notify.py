"""Render and deliver many messages: to the file channel and to a loopback SMTP server.

Enqueues N messages (default 10,000; declaration_received, half zh and half
en, with real-shaped contexts), then times `delivery.drain` delivering them:
claim (attempt recorded first), render (sandboxed Jinja2), deliver, record the
outcome with its audit event. Once to a folder of .eml files, once (a fresh
set) to an aiosmtpd server on 127.0.0.1 that accepts and counts.

    .venv/bin/python bench/notify.py                      # SQLite, 10,000
    .venv/bin/python bench/notify.py --backend postgres
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from lifecycle.acts.messages import samples  # noqa: E402
from lifecycle.core import clock, db  # noqa: E402
from notifications import delivery, queue  # noqa: E402
from notifications.channels import FileChannel, SmtpChannel  # noqa: E402


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def enqueue(e, n: int, tag: str) -> None:
    base = samples()["declaration_received"]
    messages = []
    for i in range(n):
        app_id = f"{tag}-{i:06d}"
        ctx = {**base, "application": {**base["application"], "id": app_id,
                                       "title": f"基准项目 {i}", "title_en": f"Bench project {i}"}}
        messages.append(queue.Message("declaration_received", "society", f"S{i:06d}",
                                      f"s{i}@example.org", "en" if i % 2 else "zh",
                                      f"declaration_received:{app_id}:v2:society", ctx,
                                      None, app_id))
    with db.transaction(e) as s:
        queue.enqueue(s.connection(), messages, clock.now())


def timed_drain(e, channel, n: int, label: str) -> None:
    t = time.perf_counter()
    r = delivery.drain(e, channel, limit=500, actor="bench")
    seconds = time.perf_counter() - t
    assert r.sent == n, r
    print(f"  {label}: {r.sent:,} rendered and delivered in {seconds:.2f} s "
          f"({r.sent / seconds:,.0f} messages/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    if args.backend == "postgres" and _seed.pg_available():
        raise SystemExit(f"no PostgreSQL: {_seed.pg_available()}")
    url, drop = _seed.new_database(args.backend)
    folder = tempfile.mkdtemp(prefix="starfund-bench-mail-")
    server = None
    try:
        e = db.make_engine(url)
        _seed.found(e)
        clock.set_now("2025-03-20 10:00")
        print(f"{args.backend}: {args.n:,} messages per channel")
        enqueue(e, args.n, "file")
        timed_drain(e, FileChannel(folder), args.n, f"file channel ({folder})")
        assert len(list(Path(folder).glob("*.eml"))) == args.n

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        handler = Counter()
        server = Controller(handler, hostname="127.0.0.1", port=port)
        server.start()
        enqueue(e, args.n, "smtp")
        timed_drain(e, SmtpChannel("127.0.0.1", port), args.n,
                    f"SMTP to aiosmtpd on 127.0.0.1:{port}")
        assert handler.count == args.n, handler.count
        e.dispose()
    finally:
        if server is not None:
            server.stop()
        clock.set_now(None)
        drop()


if __name__ == "__main__":
    main()
