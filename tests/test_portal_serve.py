"""The newcomer's one command: `starfund serve --demo` runs the demo, prints the URL and a
login per role, and serves a portal those logins work on (a real uvicorn process)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess

import httpx2 as httpx
import pytest
from databases import backend
from processes import starfund

pytestmark = pytest.mark.skipif(backend() != "sqlite",
                                reason="the demo runs on its own SQLite file (one run suffices)")


def test_serve_demo_prints_logins_that_work(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("STARFUND_ACTOR", "STARFUND_NOW", "STARFUND_DB")}
    # exactly as the README writes it: no --db (the demo's own database is served)
    proc = subprocess.Popen([*starfund(), "serve", "--demo", "--port", str(port)],
                            cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:  # bounded: the demo ends, then the server says where it is
            lines.append(line)
            if line.startswith("starfund portal:"):
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in out, out[-2000:]
        logins = {n: pw for n, _, pw in re.findall(r"login (\S+)\s+(\S+)\s+password (\S+)", out)}
        assert {"li-na", "s001-contact", "e001-expert"} <= set(logins)
        password = re.search(r"login s001-contact\s+\S+\s+password (\S+)", out).group(1)
        base = f"http://127.0.0.1:{port}"
        # the server listens right after printing: httpx retries a refused connect with backoff
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30,
                          transport=httpx.HTTPTransport(retries=8)) as c:
            page = c.get("/login")
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
            r = c.post("/login", data={"name": "s001-contact", "password": password,
                                       "csrf": token})
            # a society's contact meets the processing rules first, agrees, then goes home
            assert r.status_code == 303 and r.headers["location"] == "/privacy?next=/society"
            rules = c.get(r.headers["location"]).text
            assert "个人信息处理规则" in rules and "同意并继续" in rules
            version = re.search(r'name="version" value="([^"]+)"', rules).group(1)
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', rules).group(1)
            r = c.post("/privacy/agree", data={"csrf": token, "version": version,
                                               "next": "/society"})
            assert r.status_code == 303 and r.headers["location"] == "/society"
            home = c.get("/society").text
            assert "2026年度学会重点活动项目资助" in home and "在线申报" in home
            assert "2025-project-" in home  # the society's applications of the demo year
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
