"""The small call fixture and a first advance work on the backend under test."""
import json


def test_submit_moves_all_drafts(small_call):
    r = small_call("advance", "2025-project", "submit", "--json", now="2025-03-20")
    data = json.loads(r.output)
    assert data["moved"] == 20 and data["skipped"] == 0
