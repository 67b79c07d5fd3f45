"""Quick portal checks (scratch)."""
from __future__ import annotations

import portal
from portal import client, login

from lifecycle.core import clock


def test_smoke(new_db):
    db = new_db("starfund", world=portal.PORTAL)
    clock.set_now(portal.OPEN)
    c = client(db)
    r = c.get("/")
    assert r.status_code == 200, r.text
    r = login(c, "s005")
    assert r.status_code == 303, r.text
    r = c.get("/society")
    assert r.status_code == 200, r.text
    print(r.text[:3000])
    r = c.get("/society/declare/2025-project")
    assert r.status_code == 200, r.text
    token = portal.csrf_of(c, "/society/declare/2025-project")
    r = c.post("/society/declare/2025-project", data={"csrf": token, "category": "academic",
               "title": "学术年会", "requested_amount": "50000", "summary": "摘要"})
    assert r.status_code == 303, r.text
    loc = r.headers["location"]
    r = c.get(loc)
    assert r.status_code == 200, r.text
    print(r.text[:200])
