"""The portal's limits and its error pages: a body is cut off as it arrives whatever its
transfer encoding (a chunked request has no Content-Length), an Office file that would
expand too far is refused before it is stored, a session cookie the server forgot is dropped
(the login page works), a bad query parameter is a 400 page, and every error page, whatever
its status, carries the security headers and speaks the reader's language."""
from __future__ import annotations

import asyncio
import io
import re
import select as sockets
import socket
import zipfile

import portal
import pytest
from portal import CALL, client, csrf_of, login, served
from sqlalchemy import func, select
from starlette.routing import Route

from lifecycle.core import clock
from lifecycle.core.db import make_engine
from lifecycle.core.models import Attachment, AuditEvent

MB = 2**20
HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options",
           "referrer-policy")


@pytest.fixture
def declaring(new_db):
    db = new_db("starfund", world=portal.PORTAL)
    clock.set_now(portal.OPEN)
    return db


def _count(db: str, model) -> int:
    e = make_engine(db)
    try:
        with e.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar()
    finally:
        e.dispose()


def _guarded(r) -> None:
    for h in HEADERS:
        assert h in r.headers, (r.status_code, r.request.url, h)


def _chunked(app, path: str, cookies: str = "", total: int = 100 * MB,
             content_type: bytes = b"multipart/form-data; boundary=XyZ") -> tuple[int, int, dict]:
    """POST `total` bytes to the ASGI app in 1 MB chunks with no Content-Length (as a chunked
    request reaches it); (status, bytes the app pulled, response headers)."""
    pulled = 0
    head = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n" \
           b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\n"
    chunk = b"0" * MB
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.request", "body": b"", "more_body": False}
        body = head if pulled == 0 else chunk
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message):
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"content-type", content_type),
               (b"transfer-encoding", b"chunked")]
    if cookies:
        headers.append((b"cookie", cookies.encode()))
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "path": path,
             "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
             "state": {}}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], pulled, {k.decode(): v.decode() for k, v in start["headers"]}


def test_a_chunked_upload_is_cut_off_before_25_mb(declaring):
    """100 MB sent chunked, without Content-Length: to /login with no session the form is cut
    off at 64 KB; to an upload form of a signed-in society at the 21 MB cap; neither reads on
    to the end, and nothing is stored."""
    from web.app import create_app

    app = create_app(make_engine(declaring))
    status, pulled, headers = _chunked(app, "/login")
    assert status == 413 and pulled < 2 * MB, pulled  # the first 1 MB piece, not one more
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    c = client(declaring)
    login(c, "s005")
    token = csrf_of(c, "/society")
    r = c.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "policy",
                                                 "title": "政策研究", "requested_amount": "30000"})
    app_id = r.headers["location"].rsplit("/", 1)[1]
    cookies = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    before = _count(declaring, AuditEvent), _count(declaring, Attachment)
    status, pulled, headers = _chunked(app, f"/app/{app_id}/attach", cookies)
    assert status == 413 and pulled < 25 * MB, pulled
    assert headers["x-frame-options"] == "DENY"
    assert (_count(declaring, AuditEvent), _count(declaring, Attachment)) == before


def test_a_chunked_request_to_the_served_portal_is_answered_413(declaring):
    """On uvicorn, over a socket: a chunked body of 100 MB to /login gets its 413 page (with the
    headers) while the client is still sending."""
    with served(declaring) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
            piece = b"%x\r\n%s\r\n" % (MB, b"a" * MB)
            sent, answer = 0, b""
            try:
                while sent < 100 * MB and not sockets.select([s], [], [], 0)[0]:
                    s.sendall(piece)     # until the server answers
                    sent += MB
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed
            while b"\r\n\r\n" not in answer and (chunk := s.recv(65536)):
                answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 413"), head[:200]
    assert "content-security-policy" in head and "x-frame-options: deny" in head
    assert sent < 100 * MB, "the server read the whole body"


def _docx(extra: dict[str, bytes] | None = None, big: int = 0) -> bytes:
    """A docx (its parts), with `extra` parts and one of `big` zero bytes (compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document>申报书</w:document>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
        if big:
            with z.open("word/media/image1.png", "w", force_zip64=True) as f:
                for _ in range(big // MB):
                    f.write(bytes(MB))
    return buffer.getvalue()


def test_an_office_file_is_checked_as_an_archive_before_it_is_stored(declaring):
    """A zip bomb called 申报书.docx (1.3 MB expanding to 300 MB), and a docx of 6,000 parts,
    are refused with the reason and nothing is stored; a real docx is taken."""
    c = client(declaring)
    login(c, "s005")
    token = csrf_of(c, "/society")
    r = c.post(f"/society/declare/{CALL}", data={"csrf": token, "category": "policy",
                                                 "title": "政策研究", "requested_amount": "30000"})
    app_id = r.headers["location"].rsplit("/", 1)[1]
    before = _count(declaring, AuditEvent), _count(declaring, Attachment)
    bomb = _docx(big=300 * MB)
    assert len(bomb) < 2 * MB
    many = _docx({f"word/parts/p{i}.xml": b"" for i in range(6000)})
    for data, why in ((bomb, "314,572,842"), (many, "6,002")):     # said in Chinese
        r = c.post(f"/app/{app_id}/attach", data={"csrf": token, "kind": "application_form"},
                   files={"file": ("申报书.docx", data, "application/octet-stream")})
        shown = portal.flash_after(c, r)
        assert "申报书.docx" in shown and why in shown and "未保存" in shown, shown
    assert (_count(declaring, AuditEvent), _count(declaring, Attachment)) == before
    r = c.post(f"/app/{app_id}/attach", data={"csrf": token, "kind": "application_form"},
               files={"file": ("申报书.docx", _docx(), "application/octet-stream")})
    assert "申报书.docx" in portal.flash_after(c, r)
    assert _count(declaring, Attachment) == before[1] + 1


def test_an_archive_whose_headers_lie_is_refused():
    """A part whose header says 1 KB but whose data expands to 8 MB: read against its header,
    it fails its check, and the file is refused as damaged (the engine's check, as every door
    calls it)."""
    from lifecycle.core import uploads
    from lifecycle.core.errors import BadValue

    honest = _docx({"word/media/image1.png": bytes(8 * MB)})
    real = (8 * MB).to_bytes(4, "little")   # its size, in its local header and the directory
    assert honest.count(real) == 2
    data = honest.replace(real, (1024).to_bytes(4, "little"))
    with pytest.raises(BadValue, match="damaged"):
        uploads.check("申报书.docx", data, ("docx",))
    assert uploads.check("申报书.docx", honest, ("docx",)).name == "docx"


def test_a_forgotten_session_cookie_is_dropped_and_the_login_works(declaring):
    """A browser still holding a session the server no longer knows (logged out elsewhere,
    expired, another database's): the login page works at once, and the cookie is deleted."""
    c = client(declaring)
    c.cookies.set("starfund_session", "a-token-this-server-never-issued")
    page = c.get("/login")
    assert page.status_code == 200
    dropped = [v for k, v in page.headers.multi_items() if k == "set-cookie"
               and v.startswith("starfund_session=")]
    assert dropped and ("Max-Age=0" in dropped[0] or "expires=" in dropped[0].lower())
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    c.cookies.set("starfund_session", "a-token-this-server-never-issued")  # sent again anyway
    r = c.post("/login", data={"name": "s005", "password": portal.PASSWORD, "csrf": token})
    assert r.status_code == 303 and r.headers["location"] == "/society", r.text[:300]
    assert c.get("/society").status_code == 200
    d = client(declaring)   # a session ended by logging out elsewhere
    login(d, "s006")
    old = d.cookies.get("starfund_session")
    d.post("/logout", data={"csrf": csrf_of(d, "/society")})
    d.cookies.set("starfund_session", old)
    r = d.post("/login", data={"name": "s006", "password": portal.PASSWORD,
                               "csrf": csrf_of(d, "/login")})
    assert r.status_code == 303, r.text[:300]


def test_bad_query_parameters_get_a_400_page_with_the_headers(declaring):
    """Every page a staff member may open, given nonsense for the query parameters pages read
    (offset, state, trigger, since): never a 500; an offset that is not a number is a 400 page
    naming it, in the reader's language, with the headers."""
    c = client(declaring)
    login(c, "officer-li")
    r = c.get(f"/staff/call/{CALL}?offset=abc")
    assert r.status_code == 400 and "offset" in r.text and "非负整数" in r.text
    _guarded(r)
    c.get("/lang/en")
    r = c.get("/staff/audit?offset=-1")
    assert r.status_code == 400 and "whole number" in r.text
    _guarded(r)
    from web.app import create_app

    routes = [r for r in create_app(make_engine(declaring)).routes
              if isinstance(r, Route) and "GET" in r.methods]
    for who in ("officer-li", "approver-wang", "s005"):
        c = client(declaring)
        login(c, who)
        for route in routes:
            if route.path in ("/healthz", "/metrics"):  # operations' own (tests/test_health.py)
                continue
            path = route.path.format(call=CALL, app=f"{CALL}-00001", file="1", assignment="1",
                                     expert="E001", fmt="csv", lang="zh", name="funnel",
                                     kind="notice", token="x", year="2025")
            for query in ("offset=abc", "offset=99999999999999999999", "since=yesterday",
                          "until=2025-13-40", "state=%00", "trigger=nope", "next=//evil.example"):
                r = c.get(f"{path}?{query}")
                assert r.status_code < 500, (who, path, query, r.status_code)
                _guarded(r)


def test_every_error_page_carries_the_headers(declaring, monkeypatch):
    """404 (no such page), 405, 413, 403 (CSRF), 400 and a failure (500): the error page in the
    reader's language, each with the security headers."""
    c = client(declaring)
    r = c.get("/no/such/page")
    assert r.status_code == 404 and "未找到" in r.text
    _guarded(r)
    r = c.put("/login")
    assert r.status_code == 405 and "请求方式" in r.text
    _guarded(r)
    r = c.post("/login", content=b"x", headers={"content-length": str(30 * MB),
                                                "content-type": "text/plain"})
    assert r.status_code == 413 and "内容过大" in r.text
    _guarded(r)
    r = c.post("/login", data={"name": "x", "password": "y", "csrf": "forged"})
    assert r.status_code == 403 and "CSRF" in r.text and "表单已过期" in r.text
    _guarded(r)
    from starlette.testclient import TestClient

    from web.app import create_app
    from web.pages import public

    def broken(conn):
        raise RuntimeError("a bug")
    monkeypatch.setattr(public.views, "notices", broken)
    quiet = TestClient(create_app(make_engine(declaring)), raise_server_exceptions=False)
    r = quiet.get("/")
    assert r.status_code == 500 and "服务器" in r.text and "a bug" not in r.text
    _guarded(r)
