"""The user's mistakes, as one typed family.

`UserError` is what a door (the CLI, the web portal) catches and shows as one
line, with a non-zero exit. Anything else that escapes is a bug in starfund and
keeps its traceback: never catch bare ValueError or LookupError at a door.

Subclasses live beside the code that raises them (EngineError in engine,
InputError in tabular, ConfigError in callconfig); the generic kinds are here.
"""
from __future__ import annotations


class UserError(Exception):
    """A request refused because of what the user gave; the message says what and what is accepted."""


class NotFound(UserError, LookupError):
    """The user named something that does not exist (a call, an application, a database)."""


class BadValue(UserError, ValueError):
    """A value the user gave has the wrong form; the message names the field and the accepted form."""


class SchemaMismatch(UserError):
    """The database's schema is not the one this release needs (older: `starfund init`
    upgrades it; newer: made by a later release). Its own exit code, so that a script or a
    service manager can tell it from other mistakes."""

    exit_code = 4
