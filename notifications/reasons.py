"""Reasons with a code: why an application moved or did not, in English and Chinese.

A condition or a decision returns `Reason(code, **params)` (the texts are data,
`reasons.toml`). A Reason *is* its English text (a `str`), so the command line,
the audit trail and every comparison keep working; `text(lang)` gives it in
another language, and `data()` is its JSON form, which message contexts carry
and the application row keeps (`reason_code`), so a letter written later still
says it in the recipient's language. Parameters may themselves be reasons (a
ranking's head inside its verdict) or lists of them; plain strings the
configuration writes in Chinese (grades, checkpoints) are said in English
through the table's `terms`.

`localise(value, lang)` turns every reason's JSON form inside a context (dicts
and lists, at any depth) into its text in `lang`; `notifications.render` does it
before a template sees the context, so templates only ever see strings.
"""
from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh", "en")
_MARK = "reason"  # the key of a reason's JSON form: {"reason": code, "params": {...}}


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    return tomllib.loads((Path(__file__).parent / "reasons.toml").read_text(encoding="utf-8"))


def codes() -> dict[str, dict[str, str]]:
    return table()["codes"]


def term(value: str, lang: str) -> str:
    """A configured Chinese word (优秀, 结题验收) as `lang` says it."""
    return table()["terms"].get(value, value) if lang == "en" else value


def _param(value: Any, lang: str) -> Any:
    if isinstance(value, Reason):
        return value.text(lang)
    if isinstance(value, dict) and _MARK in value:
        return Reason.from_data(value).text(lang)
    if isinstance(value, list):
        return ("；" if lang == "zh" else "; ").join(str(_param(v, lang)) for v in value)
    if isinstance(value, str):
        return term(value, lang)
    return value


class Reason(str):
    """A reason: its str() is the English text; `code` and `params` say it in any language."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, /, **params: Any) -> "Reason":
        entry = codes().get(code)
        if entry is None:
            raise KeyError(f"no reason code {code!r} in notifications/reasons.toml")
        self = super().__new__(cls, _format(entry, params, "en"))
        self.code, self.params = code, params
        return self

    @classmethod
    def literal(cls, en: str, zh: str | None = None) -> "Reason":
        """A text the caller has in both languages (a configured name and its English)."""
        return cls("literal", en=en, zh=zh if zh is not None else en)

    def text(self, lang: str) -> str:
        return _format(codes()[self.code], self.params, lang)

    def data(self) -> dict[str, Any]:
        return {_MARK: self.code, "params": {k: _data(v) for k, v in self.params.items()}}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "Reason":
        return cls(data[_MARK], **{k: _undata(v) for k, v in data.get("params", {}).items()})

    def __add__(self, other: str) -> "Reason":  # type: ignore[override]
        return Reason("join", first=self, sep="", second=other)


def _format(entry: dict[str, str], params: dict[str, Any], lang: str) -> str:
    pattern = entry.get(lang) or entry["en"]
    if entry is codes().get("literal"):
        return str(params.get(lang) or params.get("en") or "")
    return pattern.format(**{k: _param(v, lang) for k, v in params.items()})


def _data(value: Any) -> Any:
    if isinstance(value, Reason):
        return value.data()
    if isinstance(value, list):
        return [_data(v) for v in value]
    return value


def _undata(value: Any) -> Any:
    if isinstance(value, dict) and _MARK in value:
        return Reason.from_data(value)
    if isinstance(value, list):
        return [_undata(v) for v in value]
    return value


def join(parts: list[Any]) -> Any:
    """Reasons one after another ("a; b"), a Reason when any part is one."""
    if not any(isinstance(p, Reason) for p in parts):
        return "; ".join(map(str, parts))
    out: Any = parts[0]
    for p in parts[1:]:
        out = Reason("join", first=out, sep=Reason.literal("; ", "；"), second=p)
    return out


def data(value: Any) -> Any:
    """What a context carries for a reason (its JSON form) or any other value (itself)."""
    return value.data() if isinstance(value, Reason) else value


def stored(value: Any) -> str:
    """The `reason_code` column's value for a decision reason: its JSON form, or ""."""
    return json.dumps(value.data(), ensure_ascii=False) if isinstance(value, Reason) else ""


def from_stored(text: str | None, fallback: Any) -> Any:
    """The reason a row keeps (`reason_code`), else the row's plain text."""
    if text:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return fallback


def localise(value: Any, lang: str) -> Any:
    """Every reason inside `value` (dicts and lists at any depth) as text in `lang`."""
    if isinstance(value, Reason):
        return value.text(lang)
    if isinstance(value, dict):
        if _MARK in value and "params" in value and len(value) == 2:
            try:
                return Reason.from_data(value).text(lang)
            except (KeyError, ValueError, IndexError):
                return str(value)
        return {k: localise(v, lang) for k, v in value.items()}
    if isinstance(value, list):
        return [localise(v, lang) for v in value]
    return value
