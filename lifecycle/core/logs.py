"""How the long-running processes (`serve`, `scheduler run`) write their logs: to standard error
(the service manager keeps them: journald, a container's log), as lines of text or, with
`--log-format json`, one JSON object per line for a log collector.

A record's structured fields (`extra={"fields": {...}}`, e.g. the access log's method, route,
status, duration and account) become keys of its JSON object (its text line says the same in
words). Times are the wall clock's, with their offset.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, its fields, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(fmt)
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT)


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    """The process's root logger: one handler on standard error in `fmt`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def uvicorn_config(fmt: str = "text") -> dict[str, Any]:
    """uvicorn's `log_config` (applied in each worker process too): its own logs at warning,
    starfund's (the access log among them) at info, all on standard error in `fmt`. uvicorn's
    access log is off: the portal writes its own (`web.access_log`), with the route and account."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"starfund": {"()": f"{__name__}.formatter", "fmt": fmt}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "starfund",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "starfund": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
