"""The portal's dashboard asks for its charts at once, so the server draws them in several
threads: each must keep the charts' settings (CJK font, text kept as text) throughout."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import system

from lifecycle.reporting import charts


def _budget(k: int) -> str:
    rows = [{"category": f"c{i}", "name": f"学术{i}-{k}", "requested": 1000 * i,
             "awarded": 500 * i, "paid": 100 * i} for i in range(1, 5)]
    return charts.svg_budget({"budget": rows}, "zh")


def test_charts_drawn_at_once_in_threads_keep_their_cjk_font():
    system.need("fonts")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(8) as pool:
            svgs = list(pool.map(_budget, range(64)))
    assert not [w for w in caught if "missing from font" in str(w.message)]
    for k, svg in enumerate(svgs):
        assert f"学术1-{k}" in svg          # text kept as text, not drawn as paths
        first = set(re.findall(r"font-family: '?([^',;]+)", svg))   # each text's first font
        assert first == {"Noto Sans CJK SC"}, first


def test_a_font_installed_after_matplotlib_listed_the_fonts_is_found_without_clearing_a_cache(
        tmp_path):
    """matplotlib lists the system's fonts once, in a cache file; fonts-noto-cjk installed
    after that must still be used (the charts look again once), with no cache cleared by hand."""
    system.need("fonts")
    from matplotlib import font_manager

    # the cache as a machine without the CJK fonts made it (the same file, those fonts left out)
    listed = json.loads(json.dumps(font_manager.fontManager, cls=font_manager._JSONEncoder))
    listed["ttflist"] = [f for f in listed["ttflist"] if "CJK" not in f["name"]]
    cache = tmp_path / f"fontlist-v{font_manager.FontManager.__version__}.json"
    cache.write_text(json.dumps(listed))
    script = ("from lifecycle.reporting import charts; print(charts.svg_budget({'budget': "
              "[{'category': 'c1', 'name': '学术', 'requested': 1, 'awarded': 1, 'paid': 1}]}))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "MPLCONFIGDIR": str(tmp_path)},
                         cwd=Path(__file__).parent.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    svg = out.stdout
    assert "学术" in svg and "missing from font" not in out.stderr
    assert set(re.findall(r"font-family: '?([^',;]+)", svg)) == {"Noto Sans CJK SC"}
    assert any("CJK" in f["name"] for f in json.loads(cache.read_text())["ttflist"])  # kept
