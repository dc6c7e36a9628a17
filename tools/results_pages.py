"""Publish measurements from data: every docs/results/data/NAME.json (one finding: its table's
entries, each with its value, interval, the attacker's verdict and the run that measured it: the
command, commit, CPU, bfloat16, date and wall time) becomes docs/results/NAME.md, the table with
the "what it says" prose beside it and the provenance of every number under it.

    python tools/results_pages.py           # write the pages
    python tools/results_pages.py --check   # exit 1 (naming them) if a page is not current

A results file holds (all required unless said):
    finding, title, setting, rows_are, columns_are, columns (the column values, in order),
    what_it_says, runs {NAME: {command, commit, date, cpu ("unknown" where it is), bfloat16 (true,
    false or null), wall_seconds (or null), note (optional)}},
    entries [{row, column, value, run,
              unit (optional): without one the value is a share in [0, 1] (an attacker's success,
                  shown as a percentage with `digits` decimals, default 1) and needs a verdict;
                  with one it is any number in that unit ("s", "images/s", "MB", "x", "%" for a number
                  in percent that is no share an attacker scored, ...), or a
                  range [low, high] where a number varied between runs,
              digits (optional), interval ([low, high], optional, in the value's own unit;
                  interval_digits, optional, its decimals where they differ from the value's),
              verdict ("converged", "off the shelf", or why not converged; "people" or
                  "simulated people" for their success, "no attacker" for another share such as
                  agreement, "every challenge passed" for an attacker at 100%, converged or not:
                  none does better; a number with a unit may have none: a speed is not an attacker's),
              note (optional): a few words shown after the value,
              also (optional): further measures of the same cell, each {what, value, unit} (a
              number: "mean error 1.2 degrees") or {what, share} (a share: "92.8% within 45 degrees")}],
    plots (optional): [{title, x (the horizontal axis's name), y (the vertical one's), column (the
        column plotted), series {NAME: {X: ROW, ...}}}]: each a log-log line chart drawn from the
        table's own entries (the value of ROW in that column, at X > 0), saved beside the page as
        NAME-K.svg and shown under its table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results"
RUN_FIELDS = ("command", "commit", "date", "cpu", "bfloat16", "wall_seconds")
ENTRY_FIELDS = ("row", "column", "value", "run")


def problems(data: dict) -> list[str]:
    """What a results file lacks or gets wrong, in words."""
    found = [
        f"no {key}"
        for key in (
            "finding",
            "title",
            "setting",
            "rows_are",
            "columns_are",
            "columns",
            "what_it_says",
            "runs",
            "entries",
        )
        if key not in data
    ]
    if found:
        return found
    if data["what_it_says"].startswith("TO WRITE"):  # a benchmark's draft (benchmarks/publish.py)
        found.append("what_it_says is still to write")
    for name, run in data["runs"].items():
        found += [f"run {name} has no {key}" for key in RUN_FIELDS if key not in run]
    for k, entry in enumerate(data["entries"]):
        found += [f"entry {k} has no {key}" for key in ENTRY_FIELDS if key not in entry]
        if entry.get("run") not in data["runs"]:
            found.append(f"entry {k} names run {entry.get('run')!r}, which the file does not describe")
        if entry.get("column") not in data["columns"]:
            found.append(f"entry {k}: column {entry.get('column')!r} is not one of {data['columns']}")
        if "unit" not in entry and "verdict" not in entry:
            found.append(f"entry {k} has no verdict (a share is an attacker's: say whether it converged)")
        found += [f"entry {k}: {said}" for said in value_problems(entry)]
        for also in entry.get("also", []):
            if "what" not in also or not ("share" in also or ("value" in also and "unit" in also)):
                found.append(f"entry {k}: a further measure needs what and a share, or what, value and unit")
    return found + plot_problems(data)


def plot_problems(data: dict) -> list[str]:
    found = []
    at = {(e["row"], e["column"]): e for e in data["entries"]}
    for k, plot in enumerate(data.get("plots", [])):
        missing = [key for key in ("title", "x", "y", "column", "series") if key not in plot]
        if missing:
            found.append(f"plot {k} has no {', '.join(missing)}")
            continue
        for name, points in plot["series"].items():
            for x, row in points.items():
                entry = at.get((row, plot["column"]))
                if entry is None:
                    found.append(f"plot {k}, {name}: no entry for row {row!r} in column {plot['column']!r}")
                elif not _positive(x) or not _positive(entry["value"]):
                    found.append(f"plot {k}, {name}: {x!r} and the value of {row!r} must be positive numbers")
    return found


def _positive(value) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def value_problems(entry: dict) -> list[str]:
    """What is wrong with an entry's value and interval."""
    value, interval, unit = entry.get("value"), entry.get("interval"), entry.get("unit")
    if unit is not None and isinstance(value, list):  # a range, where a number varied between runs
        ok = len(value) == 2 and all(isinstance(v, (int, float)) for v in value) and value[0] <= value[1]
        return [] if ok and interval is None else [f"range {value!r} is not [low, high] without an interval"]
    if not isinstance(value, (int, float)) or (unit is None and not 0 <= value <= 1):
        return [f"value {value!r} is not " + ("a share in [0, 1]" if unit is None else "a number")]
    if interval is not None and not (len(interval) == 2 and interval[0] <= value <= interval[1]):
        return [f"interval {interval!r} does not hold its value {value}"]
    return []


def number(value, unit: str | None, digits: int = 1) -> str:
    """A value as the page shows it: a share as a percentage, any other number with its unit."""
    if unit is None:
        return f"{100 * value:.{digits}f}%"
    shown = f"{value[0]:,}-{value[1]:,}" if isinstance(value, list) else f"{value:,}"
    return shown + (unit if unit in ("x", "%") else f" {unit}")


# verdicts that make no lower bound: a converged or off-the-shelf attacker, and shares no attacker scored
NOT_BOUNDS = ("converged", "off the shelf", "people", "simulated people", "no attacker", "every challenge passed")


def is_bound(entry: dict) -> bool:
    return "verdict" in entry and entry["verdict"] not in NOT_BOUNDS


def cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    unit, digits = entry.get("unit"), entry.get("digits", 1)
    text = number(entry["value"], unit, digits)
    if entry.get("interval"):
        low, high = entry["interval"]
        text += (
            f" ({100 * low:.{entry.get('interval_digits', digits)}f}-{100 * high:.{entry.get('interval_digits', digits)}f})"
            if unit is None
            else f" ({low:,}-{high:,})"
        )
    if is_bound(entry):
        text += " (lower bound)"
    for also in entry.get("also", []):
        text += (
            f"; {also['share']:.1%} {also['what']}"
            if "share" in also
            else f"; {also['what']} {also['value']:g} {also['unit']}"
        )
    if entry.get("note"):
        text += f" ({entry['note']})"
    return text


def group(entries: list[dict], key: str) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for entry in entries:
        grouped.setdefault(entry[key], []).append(entry)
    return grouped


def page(data: dict) -> str:
    """The finding's page: title, setting, the table, what it says, where every number came from."""
    rows = list(dict.fromkeys(e["row"] for e in data["entries"]))
    at = {(e["row"], e["column"]): e for e in data["entries"]}
    columns = data["columns"]
    lines = [
        f"# {data['title']}",
        "",
        "<!-- generated by tools/results_pages.py from "
        f"docs/results/data/{data['finding']}.json: edit that file, then run the tool -->",
        "",
        data["setting"],
        "",
        f"| {data['columns_are']} | " + " | ".join(str(c) for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    lines += [f"| {row} | " + " | ".join(cell(at.get((row, c))) for c in columns) + " |" for row in rows]
    lines.append("")
    for k, plot in enumerate(data.get("plots", []), 1):
        lines += [f"![{plot['title']}]({data['finding']}-{k}.svg)", ""]
    bounds = [e for e in data["entries"] if is_bound(e)]
    said = ""
    if bounds:
        said = " A value marked lower bound comes from an attacker that had not converged (its verdict is below)"
        said += (
            "; every other trained attacker here converged."
            if any(e.get("verdict") == "converged" for e in data["entries"])
            else "."
        )
    elif any(e.get("verdict") == "converged" for e in data["entries"]):
        said = " Every trained attacker here converged."
    lines += [f"Rows: {data['rows_are']}.{said}", ""]
    for verdict, alike in group(bounds, "verdict").items():
        which = (
            "every value"
            if len(alike) == len(data["entries"])
            else "; ".join(f"{e['row']}, {e['column']}" for e in alike)
        )
        lines.append(f"- {which}: {verdict}")
    lines += [""] if bounds else []
    lines += ["## What it says", "", data["what_it_says"], "", "## Where the numbers come from", ""]
    for name, run in data["runs"].items():
        rows_of_run = list(dict.fromkeys(e["row"] for e in data["entries"] if e["run"] == name))
        bf16 = {True: "bfloat16", False: "float32", None: "precision unknown"}[run["bfloat16"]]
        wall = f", {run['wall_seconds']:,} s" if run.get("wall_seconds") else ""
        lines.append(
            f"- {', '.join(rows_of_run)}: `{run['command']}` at commit {run['commit'][:10]}, {run['date']}, "
            f"CPU {run['cpu']}, {bf16}{wall}" + (f"; {run['note']}" if run.get("note") else "")
        )
    return "\n".join(lines) + "\n"


COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def chart(data: dict, plot: dict) -> str:
    """A plot of the finding (its `plots` entry) as an SVG: log-log axes, a line and dots per series."""
    import math

    at = {(e["row"], e["column"]): e["value"] for e in data["entries"]}
    series = {
        name: sorted((float(x), float(at[row, plot["column"]])) for x, row in points.items())
        for name, points in plot["series"].items()
    }
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    left, top, width, height, legend = 70, 30, 380, 240, 190

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * width

    def py(y: float) -> float:
        return top + height - (math.log10(y) - y0) / (y1 - y0) * height

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + legend}" height="{top + height + 50}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="18" font-weight="bold">{_escape(plot["title"])}</text>',
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#888"/>',
    ]
    for d in range(x0, x1 + 1):
        x = px(10.0**d)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{top + height + 16}" text-anchor="middle">{10**d:,}</text>')
    for d in range(y0, y1 + 1):
        y = py(10.0**d)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0**d:g}</text>')
    out.append(f'<text x="{left + width / 2}" y="{top + height + 38}" text-anchor="middle">{_escape(plot["x"])}</text>')
    out.append(
        f'<text x="16" y="{top + height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + height / 2})">{_escape(plot["y"])}</text>'
    )
    for k, (name, points) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in points]
        y = top + 10 + 18 * k
        out.append(
            f'<line x1="{left + width + 12}" y1="{y}" x2="{left + width + 32}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{left + width + 38}" y="{y + 4}">{_escape(name)}</text>')
    return "\n".join(out + ["</svg>"]) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that every page is current")
    args = parser.parse_args()
    stale = []
    for path in sorted((DOCS / "data").glob("*.json")):
        data = json.loads(path.read_text())
        wrong = problems(data)
        if wrong:
            print(f"{path}: {'; '.join(wrong)}", file=sys.stderr)
            return 1
        written = {DOCS / f"{data['finding']}.md": page(data)}
        for k, plot in enumerate(data.get("plots", []), 1):
            written[DOCS / f"{data['finding']}-{k}.svg"] = chart(data, plot)
        for target, text in written.items():
            if args.check:
                if not target.is_file() or target.read_text() != text:
                    stale.append(str(target))
            else:
                target.write_text(text)
    if stale:
        print("not current (run python tools/results_pages.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
