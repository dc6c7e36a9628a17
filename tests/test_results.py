"""Published numbers are data: each docs/results page is generated from its results file, and is
current with it; a results file missing what a number needs (its run's command, commit, CPU,
date; a verdict; an interval holding its value) is refused."""

import importlib.util
import os
import re
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


# a measured number: a percentage, a time, a rate, a size or a speed-up (ranges too: "330-420 sliders/s")
MEASURED = re.compile(
    r"(?<![\w.=/-])\d[\d,]*(?:\.\d+)?(?:-\d[\d,]*(?:\.\d+)?)?(?:\s?%|\s?(?:ms|s|[A-Za-z]*/s(?!/)|MB|GB)\b|x\b(?!\d))"
)
# numbers of these shapes that are not measurements: settings, limits and the confidence of intervals
NOT_MEASURED = [
    r"\b95% (?:confidence )?interval",
    r"at 0% or\s*$",
    r"^100%; it treat",
    r"^\s*5%, of it\)",  # a default parameter (coverage)
    r"larger than 20 MB",  # a limit
    r"reach 50% and 90%",  # the break cost's thresholds
    r"cut to 0\.3x",  # the stopping rule's setting
    r"95% interval of an accuracy near 90%",  # why 300 validation CAPTCHAs: arithmetic, not a measurement
    r"below 90% the",  # the underfitting rule
    r"on 500 CAPTCHAs is 97\.7-99\.6%",  # a Wilson interval worked out
    r"at least 90% (?:confident|sure)",  # the teacher's threshold
]


def measured_numbers(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        if any(re.search(pattern, line) for pattern in NOT_MEASURED):
            continue
        found += [m.group(0) for m in MEASURED.finditer(line)]
    return found


def test_docs_hold_no_measured_number_outside_a_results_file():
    assert measured_numbers("read 99.2% of them at 586/s in 4.7 s, 1.75x faster, 330-420 sliders/s") == [
        "99.2%",
        "586/s",
        "4.7 s",
        "1.75x",
        "330-420 sliders/s",
    ]
    assert measured_numbers("strength 0.5, 32x32 tiles, 3,000 CAPTCHAs, seed 3, with a 95% interval") == []
    pages = [*(REPO / "docs").glob("*.md"), REPO / "README.md"]
    stray = {p.name: measured_numbers(p.read_text()) for p in pages}
    assert not {name: numbers for name, numbers in stray.items() if numbers}, "move these into docs/results/data"


def test_a_benchmark_writes_a_results_file_the_pages_accept(tmp_path):
    """A benchmark run records its numbers with their run (command, commit, CPU, bfloat16, date):
    the file passes the same checks as a published one, and renders."""
    env = {**os.environ, "CAPTCHALAB_PUBLISHED": str(tmp_path / "published"), "PYTHONPATH": str(REPO / "benchmarks")}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "generate_speed.py"), "--count", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "published" / "generate-speed.json").read_text())
    assert tool().problems(data) == ["what_it_says is still to write"]  # a draft: CI refuses it until then
    data["what_it_says"] = "Generating is cheap."
    assert tool().problems(data) == []
    run = data["runs"]["run"]
    assert run["command"].endswith("generate_speed.py --count 20")
    if (REPO / ".git").exists():  # a clone: the commit measured, marked when the tree had changes
        assert re.fullmatch(r"[0-9a-f]{40}(\+changes)?", run["commit"]), run["commit"]
    else:  # an unpacked copy has no history to name
        assert run["commit"] == "unknown"
    assert run["cpu"] != "unknown" and isinstance(run["bfloat16"], bool)
    speeds = {e["row"]: e for e in data["entries"]}
    assert all(e["unit"] == "images/s" and e["value"] > 0 for e in speeds.values()) and len(speeds) == 3
    assert "| `generate --style distorted`, 2 worker processes |" in tool().page(data)


def test_an_attack_result_becomes_an_entry_with_its_verdict():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from publish import Finding
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    finding = Finding("f", "t", "s", "rows", "row", ["0.5"], what_it_says="w")
    run = finding.run("run", wall_seconds=12.3)
    converged = {"captcha_accuracy": 0.9, "captcha_accuracy_ci95": [0.871, 0.923], "state": {"converged": True}}
    flagged = {
        "captcha_accuracy": 0.5,
        "captcha_accuracy_ci95": [0.45, 0.55],
        "state": {"converged": False, "lower_bound": True, "reasons": ["its budget ended"]},
    }
    shelf = {"captcha_accuracy": 0.2, "ci95_low": 0.17, "ci95_high": 0.23, "converged": None, "lower_bound": False}
    for name, result in (("ctc", converged), ("segment", flagged), ("ddddocr", shelf)):
        finding.add_attack(name, 0.5, result, run)
    assert [e["verdict"] for e in finding.data["entries"]] == ["converged", "its budget ended", "off the shelf"]
    assert finding.data["entries"][2]["interval"] == [0.17, 0.23] and finding.data["runs"]["run"]["wall_seconds"] == 12
    page = tool().page(finding.data)
    assert "| segment | 50.0% (45.0-55.0) (lower bound) |" in page and "| ddddocr | 20.0% (17.0-23.0) |" in page
    finding.add("ctc", "0.5", 1.7, run)  # a share above 1: refused before anything is written
    try:
        finding.write()
    except ValueError as exc:
        assert "not a share" in str(exc)
    else:
        raise AssertionError("a bad entry was written")


def test_a_plot_is_drawn_from_the_tables_own_entries_and_refused_when_it_names_no_entry():
    results = tool()
    run = {"command": "python benchmarks/scale.py", "commit": "0" * 40, "date": "2026-12-07", "cpu": "x"}
    data = {
        "finding": "growth",
        "title": "Growth",
        "setting": "A test.",
        "rows_are": "the step and the size",
        "columns_are": "measure",
        "columns": ["seconds"],
        "what_it_says": "Linear.",
        "runs": {"run": {**run, "bfloat16": None, "wall_seconds": None}},
        "entries": [
            {"row": f"attack, {n:,}", "column": "seconds", "value": n / 100, "run": "run", "unit": "s"}
            for n in (10_000, 100_000, 1_000_000)
        ],
        "plots": [
            {
                "title": "Time against the work",
                "x": "CAPTCHAs",
                "y": "seconds",
                "column": "seconds",
                "series": {"attack": {str(n): f"attack, {n:,}" for n in (10_000, 100_000, 1_000_000)}},
            }
        ],
    }
    assert results.problems(data) == []
    assert "![Time against the work](growth-1.svg)" in results.page(data)
    svg = results.chart(data, data["plots"][0])
    # log-log: 100 s to 10,000 s over three decades of work is a straight line through its three dots
    points = re.search(r'<polyline points="([^"]+)"', svg).group(1).split()
    (x0, y0), (x1, y1), (x2, y2) = ([float(v) for v in p.split(",")] for p in points)
    assert x0 < x1 < x2 and y0 > y1 > y2 and abs((x1 - x0) - (x2 - x1)) < 0.2 and abs((y0 - y1) - (y1 - y2)) < 0.2
    assert svg.count("<circle") == 3 and ">attack</text>" in svg
    data["plots"][0]["series"]["attack"]["5"] = "attack, 5"
    data["plots"][0]["series"]["ddddocr"] = {"0": "attack, 10,000"}
    said = "; ".join(results.problems(data))
    assert "no entry for row 'attack, 5'" in said and "must be positive numbers" in said
