"""The report's charts: figures (`lifecycle.reporting.figures`) in, one inline SVG string out.

Drawn with matplotlib's SVG backend on a Figure of its own (no pyplot, no global state, no
display), text kept as text (`svg.fonttype = none`: searchable, selectable, rendered in the
reader's CJK font), nothing fetched: the SVG goes straight into the HTML page. Each
`svg_*(data)` takes the plain data the figures module returns, so the portal's dashboard can
draw the same charts from the same figures.
"""
from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lifecycle.reporting.figures import MOVES

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans", "sans-serif"]
CJK = FONTS[0]
_fonts_checked = False


_DRAWING = threading.Lock()
"""matplotlib's settings (`rcParams`) are one global: while one thread draws under its
`rc_context`, another's entering or leaving one would change its fonts mid-drawing (the
portal's dashboard asks for its charts at once). One chart is drawn at a time."""


@contextmanager
def _figure(width: float = 7.0, height: float = 3.2, lang: str = "zh") -> Iterator[Any]:
    """A Figure under the charts' settings; draw it (`_svg`) inside the block."""
    import matplotlib
    from matplotlib.figure import Figure

    with _DRAWING:
        _find_cjk_font()
    with _DRAWING, matplotlib.rc_context({"svg.fonttype": "none", "font.family": FONTS,
                                "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False, "svg.hashsalt": "starfund"}):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig


def _find_cjk_font() -> bool:
    """Whether matplotlib knows the CJK font. matplotlib lists fonts once, in a cache file: a
    font installed after that (`apt-get install fonts-noto-cjk`) stays unknown until the cache
    is rebuilt. So, once per process, when the font is not listed, the system's font files are
    looked at again, the CJK ones added, and the cache rewritten: no one clears it by hand."""
    global _fonts_checked
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if _fonts_checked or CJK in {f.name for f in manager.ttflist}:
        return True
    _fonts_checked = True
    added = False
    for path in font_manager.findSystemFonts():
        if "CJK" in os.path.basename(path):
            try:
                manager.addfont(path)
                added = True
            except (OSError, RuntimeError, ValueError):  # a file it cannot read: left out
                continue
    if added:
        import matplotlib

        cache = os.path.join(matplotlib.get_cachedir(),
                             f"fontlist-v{font_manager.FontManager.__version__}.json")
        try:
            font_manager.json_dump(manager, cache)
        except OSError:  # a read-only cache folder: the next process looks again
            pass
    return CJK in {f.name for f in manager.ttflist}


def _svg(fig: Any) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or doctype


def _label(item: dict[str, Any], lang: str) -> str:
    """A category's name as an axis label, wrapped so that neighbours never overlap."""
    import textwrap

    if lang == "en":
        return textwrap.fill(item.get("name_en") or item.get("name") or item.get("category", ""), 16)
    text = item.get("name") or item.get("category", "")
    return "\n".join(text[i:i + 7] for i in range(0, len(text), 7))


T = {"zh": {"funnel": "申报到结题", "applications": "项目数", "budget": "预算：申报、立项、已拨付（元）",
            "requested": "申报", "awarded": "立项", "paid": "已拨付", "scores": "各类别评分与分数线",
            "cut": "分数线", "pass": "及格线", "reviews": "每位专家评审数",
            "normalised": "专家标准化均值（相对同组均值）", "grades": "考核等级",
            "outcomes": "动态管理结果", "levels": "本年星级分布", "stars": "星",
            "moves": "星级变动（历年）", "granted": "资助金额（元）", "score": "评分"},
     "en": {"funnel": "From declared to completed", "applications": "applications",
            "budget": "Budget: requested, awarded, paid (yuan)", "requested": "requested",
            "awarded": "awarded amount", "paid": "paid", "scores": "Scores per category, with the cut line",
            "cut": "cut line", "pass": "pass mark", "reviews": "Reviews per expert",
            "normalised": "Experts' normalised means (vs. co-reviewers)", "grades": "Assessment grades",
            "outcomes": "Outcomes of dynamic management", "levels": "Stars this year",
            "stars": "stars", "moves": "Star moves across years", "granted": "granted (yuan)",
            "score": "score"}}


def _stage(label: str, lang: str) -> str:
    """A state's label ("已立项 awarded") in one language."""
    zh, _, en = label.partition(" ")
    return (en or zh) if lang == "en" else zh


def svg_funnel(data: dict[str, Any], lang: str = "zh") -> str:
    """How many applications reached each stage, from declared to completed."""
    stages = data["funnel"]
    with _figure(7, 0.35 * len(stages) + 0.9) as fig:
        ax = fig.add_subplot()
        names = [_stage(s["label"], lang) for s in stages][::-1]
        counts = [s["count"] for s in stages][::-1]
        bars = ax.barh(names, counts, color=COLOURS[0])
        ax.bar_label(bars, padding=3)
        ax.set_title(T[lang]["funnel"], loc="left")
        ax.set_xlabel(T[lang]["applications"])
        return _svg(fig)


def svg_budget(data: dict[str, Any], lang: str = "zh") -> str:
    """Requested, awarded and paid per category."""
    rows = data["budget"]
    with _figure() as fig:
        ax = fig.add_subplot()
        x = range(len(rows))
        for i, key in enumerate(("requested", "awarded", "paid")):
            ax.bar([v + (i - 1) * 0.27 for v in x], [r[key] for r in rows], width=0.27,
                   label=T[lang][key], color=COLOURS[i])
        ax.set_xticks(list(x), [_label(r, lang) for r in rows])
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        ax.set_title(T[lang]["budget"], loc="left")
        ax.legend(frameon=False, ncols=3)
        return _svg(fig)


def svg_scores(data: dict[str, Any], lang: str = "zh") -> str:
    """Every ranked application's score per category (dots), the category's cut line (the
    lowest funded score) and the pass mark."""
    rows = [r for r in data["scores"] if r["scores"]]
    with _figure() as fig:
        ax = fig.add_subplot()
        for i, r in enumerate(rows):
            n = len(r["scores"])
            xs = [i + (k - (n - 1) / 2) * min(0.6 / max(n, 1), 0.05) for k in range(n)]
            ax.scatter(xs, r["scores"], s=12, color=COLOURS[0], alpha=0.7)
            if r["cut"] is not None:
                ax.hlines(r["cut"], i - 0.35, i + 0.35, color=COLOURS[3], linewidth=2,
                          label=T[lang]["cut"] if i == 0 else None)
                ax.annotate(f"{r['cut']:g}", (i + 0.36, r["cut"]), fontsize=8,
                            color=COLOURS[3], va="center")
        ax.axhline(data["call"]["pass_mark"], color="#999", linestyle="--", linewidth=1,
                   label=T[lang]["pass"])
        ax.set_xticks(range(len(rows)), [_label(r, lang) for r in rows])
        ax.set_ylabel(T[lang]["score"])
        ax.set_title(T[lang]["scores"], loc="left")
        ax.legend(frameon=False, loc="lower right")
        return _svg(fig)


def svg_experts(data: dict[str, Any], lang: str = "zh") -> str:
    """Reviews per expert (bars), and each expert's normalised mean (bars around zero)."""
    rows = data["experts"]
    with _figure(7, 4.2) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True)
        ids = [r["expert"] for r in rows]
        top.bar(ids, [r["reviews"] for r in rows], color=COLOURS[0])
        top.set_title(T[lang]["reviews"], loc="left")
        norm = [r["normalised"] for r in rows]
        bottom.bar(ids, norm, color=[COLOURS[2] if v >= 0 else COLOURS[3] for v in norm])
        bottom.axhline(0, color="#666", linewidth=0.8)
        bottom.set_title(T[lang]["normalised"], loc="left")
        bottom.tick_params(axis="x", labelrotation=90, labelsize=7)
        return _svg(fig)


def svg_assessment(data: dict[str, Any], lang: str = "zh") -> str:
    """Grades per checkpoint (stacked), and the outcomes of dynamic management."""
    a = data["assessment"]
    with _figure() as fig:
        left, right = fig.subplots(1, 2)
        checkpoints = list(a["grades"])
        grades = sorted({g for c in a["grades"].values() for g in c})
        bottom = [0] * len(checkpoints)
        for i, g in enumerate(grades):
            values = [a["grades"][c].get(g, 0) for c in checkpoints]
            left.bar(checkpoints, values, bottom=bottom, label=g, color=COLOURS[i % 7])
            bottom = [b + v for b, v in zip(bottom, values)]
        left.set_title(T[lang]["grades"], loc="left")
        if grades:
            left.legend(frameon=False, fontsize=8)
        names = list(a["outcomes"])
        bars = right.bar(names, [a["outcomes"][o] for o in names], color=COLOURS[4])
        right.bar_label(bars)
        right.set_title(T[lang]["outcomes"], loc="left")
        return _svg(fig)


def svg_stars(data: dict[str, Any], lang: str = "zh") -> str:
    """A star call's stars per level."""
    levels = data["stars"]["levels"]
    with _figure(5, 2.8) as fig:
        ax = fig.add_subplot()
        bars = ax.bar([f"{k} {T[lang]['stars']}" if lang == "en" else "★" * int(k)
                       for k in levels], list(levels.values()), color=COLOURS[5])
        ax.bar_label(bars)
        ax.set_title(T[lang]["levels"], loc="left")
        return _svg(fig)


def svg_moves(years: list[dict[str, Any]], lang: str = "zh") -> str:
    """Star moves per year, stacked: new, raised, kept, lowered, lost, revoked."""
    with _figure(6, 3) as fig:
        ax = fig.add_subplot()
        labels = [str(y["year"]) for y in years]
        bottom = [0] * len(years)
        for i, m in enumerate(MOVES):
            values = [y["moves"][m] for y in years]
            ax.bar(labels, values, bottom=bottom, label=m, color=COLOURS[i])
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_title(T[lang]["moves"], loc="left")
        ax.legend(frameon=False, fontsize=8, ncols=3)
        return _svg(fig)


def svg_society(data: dict[str, Any], lang: str = "zh") -> str:
    """A society's money granted per call (bars) and its scores (dots)."""
    rows = data["history"]
    with _figure(7, 3) as fig:
        ax = fig.add_subplot()
        labels = [r["application"] for r in rows]
        ax.bar(labels, [r["granted"] for r in rows], color=COLOURS[0])
        ax.set_ylabel(T[lang]["granted"])
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        scored = [(r["application"], r["score"]) for r in rows if r["score"] is not None]
        if scored:
            twin = ax.twinx()
            twin.plot([a for a, _ in scored], [s for _, s in scored], "o", color=COLOURS[1])
            twin.set_ylabel(T[lang]["score"])
        return _svg(fig)
