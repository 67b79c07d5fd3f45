"""The portal's dashboard asks for its charts at once, so the server draws them in several
threads: each must keep the charts' settings (CJK font, text kept as text) throughout."""
from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor

from lifecycle.reporting import charts


def _budget(k: int) -> str:
    rows = [{"category": f"c{i}", "name": f"学术{i}-{k}", "requested": 1000 * i,
             "awarded": 500 * i, "paid": 100 * i} for i in range(1, 5)]
    return charts.svg_budget({"budget": rows}, "zh")


def test_charts_drawn_at_once_in_threads_keep_their_cjk_font():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(8) as pool:
            svgs = list(pool.map(_budget, range(64)))
    assert not [w for w in caught if "missing from font" in str(w.message)]
    for k, svg in enumerate(svgs):
        assert f"学术1-{k}" in svg          # text kept as text, not drawn as paths
        first = set(re.findall(r"font-family: '?([^',;]+)", svg))   # each text's first font
        assert first == {"Noto Sans CJK SC"}, first
