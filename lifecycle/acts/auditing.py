"""The audit trail's commands: query it, verify it (`starfund audit ...`).

The trail itself (the keyed hash chain, queries, checks) is lifecycle.core.audit.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from lifecycle.acts.reports import known
from lifecycle.core import anchoring, audit, clock, db, permissions
from lifecycle.core.console import (
    ISO_TIME,
    MAX_COUNT,
    Env,
    OutputPath,
    SafePath,
    common,
    csv_cell,
    echo,
    emit_json,
    json_option,
    table,
)
from lifecycle.core.progress_bar import shown
from lifecycle.core.tabular import csv_writer
from notifications import reasons
from states.workflows import WORKFLOWS


@click.group("audit")
def audit_group() -> None:
    """The audit trail: who moved what, when and why."""


# --- one line per event -------------------------------------------------------------------

class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "—"


def _labels() -> dict[str, tuple[str, str]]:
    """State name -> (Chinese, English) from the states' labels ("草稿 draft")."""
    out: dict[str, tuple[str, str]] = {}
    for wf in WORKFLOWS.values():
        for st in wf.states:
            zh, _, en = st.label.partition(" ")
            out.setdefault(st.name, (zh, en or st.name))
    return out


def _short(value: Any, lang: str) -> str:
    if isinstance(value, dict) and "reason" in value and "params" in value:
        return str(reasons.localise(value, lang))
    if isinstance(value, list):
        return ", ".join(_short(v, lang) for v in value[:6]) + (" …" if len(value) > 6 else "")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{…}"
    return "—" if value is None else str(value)


def summary(row: dict[str, Any], lang: str, labels: dict[str, tuple[str, str]]) -> str:
    """What an event changed and why, in one line of `lang` (texts: notifications/reasons.toml)."""
    table_ = reasons.table()
    phrase = {k: v[lang] for k, v in table_["phrases"].items()}
    payload = row["payload"] if isinstance(row["payload"], dict) else {}
    fields = _Fields({k: _short(v, lang) for k, v in payload.items()})
    i = 0 if lang == "zh" else 1

    def label(state: str | None) -> str:
        return labels.get(state, (state, state))[i] if state else "—"

    fields["to"] = label(row["to_state"]) if row["action"] == "create" else fields["to"]
    entry = table_["events"].get(row["action"])
    if row["from_state"] and row["to_state"]:
        text = f"{label(row['from_state'])} → {label(row['to_state'])} ({row['action']})"
        because = payload.get("because_codes") or payload.get("because")
        if because:
            text += phrase["sep"] + phrase["because"] + phrase["sep"].join(
                _short(b, lang) for b in because)
        decided = payload.get("reason_code") or (payload.get("set") or {}).get("decision_reason")
        if decided:
            text += phrase["sep"] + _short(decided, lang)
        given = (payload.get("options") or {}).get("reason")
        if given:
            text += phrase["sep"] + phrase["reason"] + str(given)
    elif entry:
        text = f"{entry[lang].format_map(fields)} ({row['action']})"
    else:
        scalars = [f"{k}={_short(v, lang)}" for k, v in payload.items()
                   if not isinstance(v, dict | list) and k != "version"][:6]
        text = row["action"] + (": " + ", ".join(scalars) if scalars else "")
    return " ".join(text.split())


def _zoned(value: str | None) -> str | None:
    """A stored programme-local time as ISO 8601 with the zone's offset."""
    if not value:
        return value
    return datetime.fromisoformat(value).replace(tzinfo=clock.zone()).isoformat()


@audit_group.command("query")
@click.option("--call", "call_id", help="Only this call.")
@click.option("--application", "application_id", help="Only this application.")
@click.option("--actor", help="Only this actor.")
@click.option("--trigger", "action", help="Only this trigger or act (e.g. close_declaration, score).")
@click.option("--since", type=ISO_TIME, help="From this ISO time (inclusive).")
@click.option("--until", type=ISO_TIME, help="Before this ISO time.")
@click.option("--newest-first", is_flag=True, help="Newest events first.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(0, MAX_COUNT),
              help="Events per page (0: all).")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1, MAX_COUNT),
              help="Page number.")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to stdout.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the one-line summaries.")
@json_option
@common
def audit_query(env: Env, call_id: str | None, application_id: str | None, actor: str | None,
                action: str | None, since: datetime | None, until: datetime | None,
                newest_first: bool,
                limit: int, page: int, as_csv: bool, lang: str) -> None:
    """Query the audit trail: one line per event, what changed and why.

    The table gives the total and the page; --json and --csv add the full payload,
    and their times are ISO 8601 with the programme's zone offset. Times given to
    --since/--until are programme-local unless they carry an offset.

    \b
    Example:  starfund audit query --call 2025-project --trigger close_declaration
              starfund audit query --application 2025-project-00004 --lang en
              starfund audit query --actor scheduler --since 2025-04-01 --csv > audit.csv
    """
    permissions.check(env.engine, env.actor, "audit.read")
    q = audit.Query(call_id=call_id, application_id=application_id, actor=actor, action=action,
                    since=since, until=until, newest_first=newest_first,
                    limit=limit or None, offset=(page - 1) * limit if limit else 0)
    labels = _labels()
    with env.engine.connect() as conn:
        known(conn, call_id, application_id)
        if as_csv:
            w = csv_writer(sys.stdout)
            cols = ["seq", "at", "written_at", "actor", "by", "action", "call_id",
                    "application_id", "from_state", "to_state", "summary", "payload", "hash"]
            w.writerow(cols)
            rows = audit.iter_rows(conn, q) if not limit else audit.query(conn, q)
            for r in rows:
                r = {**r, "at": _zoned(r["at"]), "written_at": _zoned(r["written_at"]),
                     "summary": summary(r, lang, labels)}
                w.writerow([csv_cell(json.dumps(r[c], ensure_ascii=False) if c == "payload"
                                     else r[c]) for c in cols])
            return
        rows = audit.query(conn, q)
        total = audit.count(conn, q)
    if env.as_json:
        return emit_json([{**r, "at": _zoned(r["at"]), "written_at": _zoned(r["written_at"]),
                           "summary": summary(r, lang, labels)} for r in rows])
    pages = max(1, -(-total // limit)) if limit else 1
    table(f"audit events: page {page} of {pages}, {total} in all "
          f"(times {clock.zone().key}; 'written' shown where it differs)",
          ["seq", "at", "written", "actor", "application", "what"],
          [[r["seq"], r["at"], r["written_at"] if r["written_at"] != r["at"] else "",
            f"{r['by']} as {r['actor']}" if r["by"] else r["actor"], r["application_id"] or "",
            summary(r, lang, labels)] for r in rows])
    shown = f"{q.offset + 1}-{q.offset + len(rows)}" if rows else "none"
    echo(f"{total} event(s); shown {shown}" + (f"; next: --page {page + 1}"
                                               if limit and page < pages else ""))


@audit_group.command("verify")
@click.option("--key-file", type=SafePath(dir_okay=False), metavar="PATH",
              help="The chain key [default: where init wrote it; env STARFUND_AUDIT_KEY].")
@click.option("--unkeyed", is_flag=True,
              help="Check without the chain key (links and data only); the report says so.")
@click.option("--anchors", "anchors_dir", type=SafePath(file_okay=False, exists=True),
              metavar="DIR", help="Also prove the trail still holds every head anchored in DIR.")
@click.option("--public-key", metavar="BASE64",
              help="The anchor public key to trust (the auditor's copy; `audit public-key`) "
                   "[default: this database's own anchor key, else the anchors' own].")
@json_option
@common
def audit_verify(env: Env, key_file: str | None, unkeyed: bool, anchors_dir: str | None,
                 public_key: str | None) -> None:
    """Check the audit trail: its keyed hash chain, its anchors, and that it explains the data.

    Every event's keyed hash (HMAC-SHA256 under the chain key, a file outside the
    database), the chain's head, every application's state against its last event,
    every application's creation event, and the database's mode and id against the
    event that recorded them. Without the key file the check is unkeyed (links and
    data only) and says so; anchors (--anchors) then still prove that no anchored
    head was truncated, deleted or rewritten. Every problem is one line (exit 1).

    \b
    Example:  starfund audit verify
              starfund audit verify --anchors /srv/audit-anchors --public-key MCowBQ...
    """
    from lifecycle.core import anchors as anchoring

    permissions.check(env.engine, env.actor, "audit.read")
    with shown(env, "audit verify", interrupted="the check did not finish; it only reads, "
                                                "nothing was changed") as progress, \
            db.reading(env.engine) as conn:   # one snapshot: others may write meanwhile
        key, why = _key(conn, key_file, unkeyed)
        result = audit.check(conn, key, progress=progress)
        if anchors_dir and public_key is None:
            public_key = _own_public_key(conn)
        found = anchoring.verify(conn, Path(anchors_dir), public_key) if anchors_dir else []
    bad = [f for f in found if f.problem]
    ok = result.ok and not bad
    if env.as_json:
        broken = result.first_break
        emit_json({"checked": result.checked, "ok": ok, "keyed": result.keyed,
                   "unkeyed_because": why, "mode": result.mode,
                   "applications": result.applications,
                   "broken_at": broken.seq if broken else None,
                   "problem": broken.problem if broken else None,
                   "problems": [p.__dict__ for p in result.problems],
                   "anchors": [{"file": str(f.path), "seq": f.seq, "problem": f.problem}
                               for f in found]})
    else:
        if not result.keyed:
            echo(f"UNKEYED check: {why}; the events' contents were not checked, only their "
                 "links and the data (a consistent rewrite would not be seen here; anchors "
                 "would show it)", err=True)
        if found:
            echo(f"anchors: {len(found) - len(bad)} of {len(found)} held", err=bool(bad))
            for f in bad:
                echo(f"  {f.path.name}: {f.problem}", err=True)
        if result.ok:
            echo(f"audit chain intact{'' if result.keyed else ' (unkeyed)'}: {result.checked} "
                 f"events verified; {result.applications} applications agree with their "
                 f"trail; database {result.mode}")
        else:
            echo(f"audit trail BROKEN: {len(result.problems)} problem(s) "
                 f"({result.checked} events read)", err=True)
            for p in result.problems:
                echo(f"  {p.message}", err=True)
    if not ok:
        sys.exit(1)


def _own_public_key(conn) -> str | None:
    """Without --public-key, trust this database's own anchor key (not the key an anchor
    carries, which whoever forged the anchor chose); None when its file is not at hand."""
    from lifecycle.core import anchors as anchoring
    from lifecycle.core.errors import UserError

    try:
        return anchoring.public_key_of(conn)
    except UserError:
        return None


def _key(conn, key_file: str | None, unkeyed: bool):
    """(the chain key, None) or (None, why the check is unkeyed)."""
    from lifecycle.core import keys, meta

    if unkeyed:
        return None, "--unkeyed was asked for"
    facts = meta.read(conn)
    if meta.DATABASE_ID not in facts:
        return None, "the database has no id (made before starfund had keys)"
    try:
        return keys.load_chain_key(facts[meta.DATABASE_ID], key_file,
                                   facts.get(meta.CHAIN_KEY)), None
    except keys.NotFound as e:
        return None, str(e)


@audit_group.command("anchor")
@click.option("--dir", "folder", type=OutputPath(folder=True), default="audit-anchors",
              show_default=True, envvar="STARFUND_ANCHORS",
              help="Folder to write the anchor to (keep it apart from the database) "
                   "[env STARFUND_ANCHORS].")
@click.option("--mail-to", multiple=True, metavar="ADDRESS",
              help="Also queue it to these addresses (default: every auditor account with an "
                   "email); deliver with `notify send`.")
@click.option("--no-mail", is_flag=True, help="Do not queue it to anyone.")
@json_option
@common
def audit_anchor(env: Env, folder: str, mail_to: tuple[str, ...], no_mail: bool) -> None:
    """Sign the audit trail's current head with the anchor key and write it to a file.

    An anchor is a few lines of JSON: the head's sequence number and hash, the
    time, the database's id and the chain key's fingerprint, signed with Ed25519.
    Keep anchors where the database's administrators cannot write (mail them to
    the auditor: they are queued to every auditor account with an email).

    \b
    Example:  starfund audit anchor --dir /srv/audit-anchors
    """
    actor = permissions.check(env.engine, env.actor, "audit.anchor")
    path, body, queued = anchoring.anchor_now(env.engine, actor, Path(folder),
                                    None if no_mail else list(mail_to))
    if env.as_json:
        return emit_json({"file": str(path), "queued": queued, **body})
    echo(f"anchored event {body['seq']} ({body['hash'][:16]}...) in {path}"
         + (f"; queued to {queued} address(es)" if queued else ""))


@audit_group.command("public-key")
@common
def audit_public_key(env: Env) -> None:
    """Print the anchor public key, for the auditor to keep apart and pass to --public-key.

    \b
    Example:  starfund audit public-key > anchor-public-key.txt
    """
    from lifecycle.core import anchors as anchoring

    permissions.check(env.engine, env.actor, "audit.read")
    with env.engine.connect() as conn:
        echo(anchoring.public_key_of(conn))
