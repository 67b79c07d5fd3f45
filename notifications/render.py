"""Rendering messages from Jinja2 templates: sandboxed, and strict about missing values.

A template is one file per message kind and language,
`templates/<lang>/<kind>.txt`, with a `subject` block, a plain-text `body`
block and optionally an `html` block. Administrators override any template by
putting a file of the same name (`<lang>/<kind>.txt`) in the folder named by
`--templates` (or STARFUND_TEMPLATES, read by lifecycle.core.settings and passed
down as `override`); zh is the default language.

`check` validates every template a deployment would use: syntax, the blocks,
and every placeholder against the context its kind receives: the caller passes
a sample of every kind, built by the builders of `notifications.contexts`
(`lifecycle.acts.messages.check` does, with the kinds the workflows send).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from notifications import reasons

BUILTIN = Path(__file__).parent / "templates"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


@dataclass
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/octet-stream"


@dataclass
class Rendered:
    subject: str
    body: str
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


SIGNATURES = {"zh": "市科协学会工作部",
              "en": "Society Affairs Department, City Association for Science and Technology"}
"""The sign-off of every built-in template unless the settings give one (mail_signature)."""


@dataclass(frozen=True)
class Letterhead:
    """Who the mail comes from, from the settings (lifecycle.core.settings, STARFUND_MAIL_*):
    the From address and display name, Reply-To, the Message-ID domain, the signature per
    language and the portal's address (an empty value: not configured)."""

    address: str = "starfund@kexie.example.org"
    name: str = ""
    reply_to: str = ""
    domain: str = "starfund"
    signature: str = ""
    signature_en: str = ""
    portal_url: str = ""

    def mail(self, language: str) -> dict[str, Any]:
        """What templates see as `mail`: the signature in `language` and the portal's address."""
        own = self.signature_en if language == "en" else self.signature
        return {"signature": own or SIGNATURES.get(language, SIGNATURES[DEFAULT_LANGUAGE]),
                "portal_url": self.portal_url.rstrip("/")}


def yuan(value: Any) -> str:
    """Amounts as people write them: 50,000 元."""
    return "—" if value is None else f"{int(value):,}"


@lru_cache(maxsize=8)
def environment(override: str | None = None) -> SandboxedEnvironment:
    loaders = [FileSystemLoader(override)] if override else []
    loaders.append(FileSystemLoader(str(BUILTIN)))
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                               autoescape=False, keep_trailing_newline=False)
    env.filters["yuan"] = yuan
    return env


def template_name(kind: str, language: str) -> str:
    return f"{language if language in LANGUAGES else DEFAULT_LANGUAGE}/{kind}.txt"


def render(kind: str, language: str, context: dict[str, Any],
           override: str | None = None, letterhead: Letterhead | None = None) -> Rendered:
    """Render one message; raises jinja2 errors for unknown kinds or missing values.

    Reasons in the context are said in `language` (notifications.reasons); `mail`
    (signature, portal address) comes from `letterhead`, the settings' (default: built-in).
    """
    env = environment(override)
    template = env.get_template(template_name(kind, language))
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    context = {**reasons.localise(context, language),
               "mail": (letterhead or Letterhead()).mail(language)}
    ctx = template.new_context(dict(context))
    subject = " ".join("".join(template.blocks["subject"](ctx)).split())
    body = "".join(template.blocks["body"](ctx)).strip() + "\n"
    html = None
    if "html" in template.blocks:
        html_ctx = template.new_context(dict(context))
        html = "".join(template.blocks["html"](html_ctx)).strip() or None
    return Rendered(subject, body, html)


# --- checking -------------------------------------------------------------------------

@dataclass
class Problem:
    file: str
    line: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.severity}: {where}: {self.message}"


@dataclass
class CheckReport:
    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def _chain(node: nodes.Node) -> list[str] | None:
    """`a.b['c'].d` as ['a', 'b', 'c', 'd']; None if it is not a plain chain of names."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return parts[::-1]
        else:
            return None


_MISSING = object()


def _resolve(shape: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(shape, dict):
            if part not in shape:
                return _MISSING
            shape = shape[part]
        else:
            return None  # a string, number or list: its methods are not placeholders
    return shape


def _placeholders(ast: nodes.Template, sample: dict[str, Any]) -> list[tuple[int, str]]:
    """Placeholders that name something the kind's context does not have (with their line)."""
    scope = dict(sample)
    for loop in ast.find_all(nodes.For):
        target, it = loop.target, _chain(loop.iter)
        if isinstance(target, nodes.Name) and it:
            items = _resolve(sample, it)
            scope.setdefault(target.name,
                             items[0] if isinstance(items, list) and items else None)
    for assign in ast.find_all(nodes.Assign):
        if isinstance(assign.target, nodes.Name):
            scope.setdefault(assign.target.name, None)
    bad: list[tuple[int, str]] = []
    seen: set[str] = set()
    for node in ast.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        path = _chain(node)
        if not path or (isinstance(node, nodes.Name) and node.ctx != "load"):
            continue
        if path[0] in ("loop", "range", "true", "false", "none", "namespace", "dict", "lipsum",
                       "cycler", "joiner", "super", "self", "varargs", "kwargs"):
            continue
        if path[0] not in scope:
            missing = path[0]
        elif _resolve(scope, path) is _MISSING:
            missing = ".".join(path)
        else:
            continue
        if missing not in seen:
            seen.add(missing)
            bad.append((node.lineno, missing))
    return bad


def template_files(override: str | None = None) -> dict[str, Path]:
    """Every template in use, by name (`zh/awarded.txt`): the override wins over the built-in."""
    found: dict[str, Path] = {}
    for root in ([BUILTIN] + ([Path(override)] if override else [])):
        for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for f in sorted(lang_dir.glob("*.txt")):
                found[f"{lang_dir.name}/{f.name}"] = f
    return found


def check(samples: Mapping[str, dict[str, Any]], override: str | None = None) -> CheckReport:
    """Validate every template: syntax, blocks, placeholders, a test render, and coverage.

    `samples` holds a context of every message kind sent (kind -> sample context).
    """
    report = CheckReport()
    if override and not Path(override).is_dir():
        report.problems.append(Problem(override, None, "template folder does not exist"))
        return report
    env = environment(override)
    kinds = set(samples)
    files = template_files(override)
    for name, path in sorted(files.items()):
        report.checked.append(str(path))
        lang, kind = name.split("/", 1)[0], name.split("/", 1)[1].removesuffix(".txt")
        if lang not in LANGUAGES:
            report.problems.append(Problem(str(path), None, f"unknown language folder {lang!r} "
                                           f"(use {', '.join(LANGUAGES)})", "warning"))
        try:
            ast = env.parse(path.read_text(encoding="utf-8"), name, str(path))
            env.compile(ast, name, str(path))
        except TemplateSyntaxError as e:
            report.problems.append(Problem(str(path), e.lineno, f"syntax error: {e.message}"))
            continue
        blocks = {b.name for b in ast.find_all(nodes.Block)}
        for block in ("subject", "body"):
            if block not in blocks:
                report.problems.append(Problem(str(path), None, f"no {{% block {block} %}}"))
        if kind not in kinds:
            report.problems.append(Problem(str(path), None, f"no message kind {kind!r} is sent "
                                           "by any workflow or reminder (unused template)",
                                           "warning"))
            continue
        sample = {**reasons.localise(samples[kind], lang), "mail": Letterhead().mail(lang)}
        for line, missing in _placeholders(ast, sample):
            report.problems.append(Problem(
                str(path), line, f"unknown placeholder {missing!r}: the {kind} context has "
                f"{', '.join(sorted(sample))}"))
        if not any(p.file == str(path) and p.severity == "error" for p in report.problems):
            try:
                render(kind, lang, sample, override)
            except Exception as e:  # noqa: BLE001 - report, do not crash the check
                report.problems.append(Problem(str(path), getattr(e, "lineno", None),
                                               f"does not render: {type(e).__name__}: {e}"))
    for kind in sorted(kinds):
        for lang in LANGUAGES:
            if f"{lang}/{kind}.txt" not in files:
                report.problems.append(Problem(f"{lang}/{kind}.txt", None,
                                               f"missing template for message kind {kind!r}"))
    return report
