"""Published numbers are data: each docs/results page is generated from its results file, and is
current with it; a results file missing what a number needs (its run's command, commit, CPU,
date; a verdict; an interval holding its value) is refused."""

import importlib.util
import json
import subprocess
import sys

from conftest import REPO

TOOL = REPO / "tools" / "results_pages.py"


def tool():
    spec = importlib.util.spec_from_file_location("results_pages", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_results_page_is_current_with_its_file():
    done = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pages = sorted(p.stem for p in (REPO / "docs" / "results").glob("*.md"))
    assert pages and pages == sorted(p.stem for p in (REPO / "docs" / "results" / "data").glob("*.json"))


def test_a_results_file_without_provenance_or_with_a_bad_number_is_refused():
    results = tool()
    data = json.loads((REPO / "docs" / "results" / "data" / "sliders-and-decoys.json").read_text())
    assert results.problems(data) == []
    del data["runs"]["ddddocr"]["commit"]
    data["entries"][0]["interval"] = [0.2, 0.3]
    data["entries"][1]["value"] = 50.8
    said = "; ".join(results.problems(data))
    assert "run ddddocr has no commit" in said and "does not hold its value" in said and "not a share" in said
    page = results.page(json.loads((REPO / "docs" / "results" / "data" / "sliders-and-decoys.json").read_text()))
    assert "| `template` (off the shelf) | 99.5% (98.8-99.8) | 50.8% |" in page and "CPU unknown" in page
