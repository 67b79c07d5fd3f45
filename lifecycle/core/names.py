"""Clean names: one checker for every name that comes from outside.

A name (an actor given with --as/STARFUND_ACTOR, a society, expert or
application title in an imported row, a call id on the command line) ends up in
the audit trail, in messages and on terminals. So it must not carry control
characters (newlines, tabs, terminal escape codes such as ESC [ ... m, DEL, the
C1 controls), nor the invisible bidirectional overrides or line/paragraph
separators that make text display as something it is not, and it must fit a
stated length.

Use::

    from lifecycle.core.names import clean_name
    name = clean_name(raw, "society name", limit=200)        # -> stripped str
    # raises lifecycle.core.errors.BadName (a UserError and a ValueError) naming the
    # field, the offending character (as \\xNN / \\uNNNN) and what is accepted.

Callers that know the file and row should prefix the message themselves, e.g.
``f"{source} row {n}: {e}"``, or pass ``where="societies.csv row 7"``.

`printable(text)` is the output side: it escapes what a terminal cannot show
safely (control characters become ``\\xNN``/``\\uNNNN``), for echoing data that
came from a database written by someone else.
"""
from __future__ import annotations

import unicodedata

from lifecycle.core.errors import BadValue

DEFAULT_LIMIT = 200

# Not Cc, but they reorder or break the displayed line: refuse them too.
_INVISIBLE = {"\u2028", "\u2029", "\u200e", "\u200f", "\u061c"} | {
    chr(c) for c in range(0x202A, 0x202F)} | {chr(c) for c in range(0x2066, 0x206A)}


class BadName(BadValue):
    """A name with a control character, empty, or over its length limit."""


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _INVISIBLE


def _escape_char(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_name(value: object, field: str, limit: int = DEFAULT_LIMIT, *,
               where: str | None = None, required: bool = True) -> str:
    """Return `value` as a stripped str, or raise BadName naming `field` (and `where`, if given).

    Refused: control characters (C0, DEL, C1: newline, tab, ESC ...), bidi
    overrides and line/paragraph separators; more than `limit` characters;
    empty after stripping spaces (unless `required` is False, which returns "").
    """
    prefix = f"{where}: " if where else ""
    text = "" if value is None else str(value)
    bad = next((ch for ch in text if _unsafe(ch)), None)
    if bad is not None:
        raise BadName(f"{prefix}{field} contains the control character {_escape_char(bad)} "
                      f"(at position {text.index(bad) + 1}); accepted: printable text on one line")
    text = text.strip()
    if not text and required:
        raise BadName(f"{prefix}{field} is empty; accepted: 1 to {limit} printable characters")
    if len(text) > limit:
        raise BadName(f"{prefix}{field} is {len(text)} characters long; "
                      f"the limit is {limit}")
    return text


def printable(value: object, multiline: bool = False) -> str:
    """`value` as text safe for a terminal: unsafe characters shown as \\xNN / \\uNNNN escapes.

    With `multiline`, newlines and tabs are kept (for whole messages and bodies);
    everything else unsafe (ESC, CR, BS, DEL, C1, bidi overrides) is still escaped.
    """
    text = "" if value is None else str(value)
    keep = "\n\t" if multiline else ""
    if not any(_unsafe(ch) and ch not in keep for ch in text):
        return text
    return "".join(_escape_char(ch) if _unsafe(ch) and ch not in keep else ch for ch in text)


def mask_account(number: str | None) -> str:
    """A bank account number as tables, letters and statements show it: all but the last four
    characters hidden (`**** **** 1234`); the full number is only in the finance export and in
    what the finance role reads."""
    digits = (number or "").replace(" ", "")
    if not digits:
        return ""
    if len(digits) <= 4:
        return "*" * len(digits)
    return "**** " + digits[-4:]
