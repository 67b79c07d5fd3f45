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

from lifecycle import kinds
from lifecycle.acts import objections, views
from lifecycle.acts.reports import known
from lifecycle.console import (
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
from lifecycle.core import audit, clock, db, keys
from lifecycle.core.tabular import csv_writer
from lifecycle.engine import anchoring, permissions
from lifecycle.progress_bar import shown
from notifications import reasons


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
    for wf in (k.workflow for k in kinds.all_kinds()):
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
            may = objections.may_see_contact(conn, env.actor)    # contacts: approvers only
            for r in (views.trail_as_read(conn, env.actor, [e], may)[0] for e in rows):
                r = {**r, "at": _zoned(r["at"]), "written_at": _zoned(r["written_at"]),
                     "summary": summary(r, lang, labels)}
                w.writerow([csv_cell(json.dumps(r[c], ensure_ascii=False) if c == "payload"
                                     else r[c]) for c in cols])
            return
        rows = views.trail_as_read(conn, env.actor, audit.query(conn, q))  # contacts: approvers
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


UNKEYED_EXIT = 3
"""`audit verify --unkeyed` that found nothing wrong: not 0, since it proves less."""


@audit_group.command("verify")
@click.option("--key-file", type=SafePath(dir_okay=False), metavar="PATH",
              help="The chain key [default: env STARFUND_AUDIT_KEY, else "
                   "<config>/keys/<database id>.key; never a path the database names].")
@click.option("--unkeyed", is_flag=True,
              help="Check without the chain key (links and data only): proves less, says so, "
                   f"and exits {UNKEYED_EXIT} when nothing is wrong.")
@click.option("--anchors", "anchors_dir", type=SafePath(file_okay=False, exists=True),
              metavar="DIR", help="Also prove the trail still holds every head anchored in DIR.")
@click.option("--public-key", metavar="BASE64",
              help="The anchor public key to trust (the auditor's copy; `audit public-key`) "
                   "[default: your own anchor key file's; never the key an anchor carries].")
@json_option
@common
def audit_verify(env: Env, key_file: str | None, unkeyed: bool, anchors_dir: str | None,
                 public_key: str | None) -> None:
    """Check the audit trail: its keyed hash chain, its anchors, and that it explains the data.

    Every event's keyed hash (HMAC-SHA256 under the chain key, a file outside the
    database; HMAC-SM3 for a database made with `init --crypto sm`, as its key file
    and its trail say: a mismatch is a problem), the chain's head, every live
    event's time against when it was written, every application's state against
    its last event, every application's creation event, and the database's mode,
    id and crypto against the event that recorded them. The keys come from your
    files, options and environment only, never from the database under check; a
    key that is named but missing is an error. Only --unkeyed checks without the
    chain key (links and data only): it says so and exits 3 when nothing is wrong.
    Anchors (--anchors) prove that no anchored head was truncated, deleted or
    rewritten. Every problem is one line (exit 1).

    \b
    Example:  starfund audit verify
              starfund audit verify --anchors /srv/audit-anchors --public-key MCowBQ...
    """
    from lifecycle.core import anchors as anchoring

    permissions.check(env.engine, env.actor, "audit.read")
    with shown(env, "audit verify", interrupted="the check did not finish; it only reads, "
                                                "nothing was changed") as progress, \
            db.reading(env.engine) as conn:   # one snapshot: others may write meanwhile
        key = None if unkeyed else _key(conn, key_file)
        if anchors_dir and public_key is None:
            public_key = _own_public_key(conn)
        result = audit.check(conn, key, progress=progress)
        settled = None if any(p.check == "crypto" for p in result.problems) else result.crypto
        found = anchoring.verify(conn, Path(anchors_dir), public_key, settled) \
            if anchors_dir else []
    bad = [f for f in found if f.problem]
    ok = result.ok and not bad
    why = "--unkeyed was asked for" if unkeyed else None
    if env.as_json:
        broken = result.first_break
        emit_json({"checked": result.checked, "ok": ok, "keyed": result.keyed,
                   "unkeyed_because": why, "mode": result.mode, "crypto": result.crypto,
                   "applications": result.applications,
                   "broken_at": broken.seq if broken else None,
                   "problem": broken.problem if broken else None,
                   "problems": [p.__dict__ for p in result.problems],
                   "anchors": [{"file": str(f.path), "seq": f.seq, "problem": f.problem,
                                "note": f.note} for f in found]})
    else:
        if not result.keyed:
            echo("UNKEYED check (--unkeyed): the events' contents were not checked, only their "
                 "links and the data; whoever can write to the database could have rewritten "
                 "the trail consistently and this check would not see it (anchors would)",
                 err=True)
        if found:
            echo(f"anchors: {len(found) - len(bad)} of {len(found)} held", err=bool(bad))
            for f in bad:
                echo(f"  {f.path.name}: {f.problem}", err=True)
            for f in found:
                if f.note:
                    echo(f"  {f.path.name}: held as lost: {f.note}")
        if result.ok:
            echo(f"audit chain intact{'' if result.keyed else ' as far as an UNKEYED check sees'}"
                 f": {result.checked} events verified; {result.applications} applications "
                 f"agree with their trail; database {result.mode}, crypto {result.crypto} "
                 f"({keys.crypto(result.crypto).label})")
        else:
            echo(f"audit trail BROKEN: {len(result.problems)} problem(s) "
                 f"({result.checked} events read)", err=True)
            for p in result.problems:
                echo(f"  {p.message}", err=True)
    if not ok:
        sys.exit(1)
    if not result.keyed:
        sys.exit(UNKEYED_EXIT)


def _own_public_key(conn) -> str:
    """Without --public-key, the public half of the operator's own anchor key (its file from
    --anchor-key's places: STARFUND_ANCHOR_KEY, else the config folder); never the key an
    anchor carries (whoever forged the anchor chose it), nor a path the database names."""
    from lifecycle.core import anchors as anchoring
    from lifecycle.core.errors import NotFound

    try:
        return anchoring.public_key_of(conn)
    except NotFound as e:
        raise NotFound(f"{e}: no anchor public key to trust; give the auditor's copy with "
                       "--public-key (what `starfund audit public-key` printed)") from None


def _key(conn, key_file: str | None):
    """The chain key, from --key-file, STARFUND_AUDIT_KEY or the config folder; missing is an
    error naming where it was looked for (an unkeyed check is only ever asked for)."""
    from lifecycle.core import meta

    facts = meta.read(conn)
    if meta.DATABASE_ID not in facts:
        raise keys.NotFound("the database has no id and so no chain key (made before starfund "
                            "had keys): check it with --unkeyed, or run `starfund init` on it")
    try:
        return keys.load_chain_key(facts[meta.DATABASE_ID], key_file)
    except keys.NotFound as e:
        raise keys.NotFound(f"{e}; give the chain key with --key-file PATH or "
                            "STARFUND_AUDIT_KEY, or check without it with --unkeyed (proves "
                            "less)") from None


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
    time, the database's id and the chain key's fingerprint, signed with Ed25519
    (SM2 on a database made with `init --crypto sm`).
    Keep anchors where the database's administrators cannot write (mail them to
    the auditor: they are queued to every auditor account with an email).

    \b
    Example:  starfund audit anchor --dir /srv/audit-anchors
    """
    env.service = True  # the service user may anchor (cron), as the scheduler does daily
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
