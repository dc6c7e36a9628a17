"""Benchmarks publish what they measure as results files, the form tools/results_pages.py turns
into docs/results pages: a `Finding` collects entries, each tied to the run that measured it
(this command, the commit, the CPU, whether training used bfloat16, the date, the wall time), and
`Finding.write` saves it as results/published/NAME.json (results/ is not committed). To publish
it: review the file, copy it to docs/results/data/ (or merge its entries into the file there),
write what it says, and run `python tools/results_pages.py`.

    finding = Finding("slider-speed", "Sliders: how fast ...", setting="...", rows_are="what",
                      columns_are="measure", columns=["speed"])
    run = finding.run("main", wall_seconds=812)
    finding.add("`template` reads", "speed", 380, run, unit="sliders/s")
    finding.add_attack("template", "strength 0.5", report["per_attacker"]["template"], run)
    print(finding.write())
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("CAPTCHALAB_PUBLISHED") or REPO / "results" / "published")  # the tests point it elsewhere
WHAT_IT_SAYS = "TO WRITE: what this finding says, before it is published"


def commit() -> str:
    """The commit measured; "+changes" when the tree held uncommitted changes to tracked files."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu() -> str:
    """The CPU's model name, with what decides training speed here: native bfloat16 or AVX2 only."""
    name = platform.processor() or "unknown"
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        info = ""
    flags = "AVX512-BF16" if (" avx512_bf16" in info or " amx_bf16" in info) else "AVX2" if " avx2" in info else ""
    return f"{name}, {os.cpu_count()} cores" + (f", {flags}" if flags else "")


def bfloat16() -> bool:
    """Whether captchalab trains in bfloat16 mixed precision here."""
    from captchalab.runtime import training_policy

    return training_policy() == "mixed_bfloat16"


def verdict(state: dict | None) -> str:
    """An attack result's `state` as a results file's verdict."""
    state = state or {}
    if state.get("converged") is True:
        return "converged"
    if state.get("lower_bound") is False:  # not trained on this design, and not a lower bound: off the shelf
        return "off the shelf"
    return "; ".join(state.get("reasons") or []) or "not converged (no reason recorded)"


class Finding:
    def __init__(
        self,
        name: str,
        title: str,
        setting: str,
        rows_are: str,
        columns_are: str,
        columns: list,
        what_it_says: str = WHAT_IT_SAYS,
    ):
        self.data = {
            "finding": name,
            "title": title,
            "setting": setting,
            "rows_are": rows_are,
            "columns_are": columns_are,
            "columns": [str(c) for c in columns],
            "what_it_says": what_it_says,
            "runs": {},
            "entries": [],
        }

    def run(self, name: str, wall_seconds: float | None = None, note: str | None = None) -> str:
        """Record this process's run under `name` (the command that started it, the commit, the CPU,
        bfloat16, today's date); entries name it."""
        record = {
            "command": "python " + shlex.join(sys.argv),
            "commit": commit(),
            "date": datetime.date.today().isoformat(),
            "cpu": cpu(),
            "bfloat16": bfloat16(),
            "wall_seconds": None if wall_seconds is None else round(wall_seconds),
        }
        if note:
            record["note"] = note
        self.data["runs"][name] = record
        return name

    def add(self, row: str, column, value, run: str, **fields) -> None:
        """An entry: a share in [0, 1] (with `verdict`), or a number with a `unit`; see
        tools/results_pages.py for every field."""
        entry = {"row": row, "column": str(column), "value": value, "run": run}
        entry.update({k: v for k, v in fields.items() if v is not None})
        self.data["entries"].append(entry)

    def add_attack(self, row: str, column, result: dict, run: str, **fields) -> str:
        """An attacker's CAPTCHA success from an attack report's result (its `per_attacker` entry or
        a study's cell row): the value, the Wilson interval and the verdict. Returns the verdict, for
        the same attacker's other measures."""
        interval = result.get("captcha_accuracy_ci95")
        if interval is None and result.get("ci95_low") is not None:
            interval = [result["ci95_low"], result["ci95_high"]]
        state = result.get("state") or {
            "converged": result.get("converged"),
            "lower_bound": result.get("lower_bound"),
        }
        said = verdict(state)
        self.add(
            row,
            column,
            result["captcha_accuracy"],
            run,
            interval=[round(x, 4) for x in interval] if interval else None,
            verdict=said,
            **fields,
        )
        return said

    def plot(self, title: str, x: str, y: str, column: str, series: dict[str, dict]) -> None:
        """A log-log chart under the table: per series, {x: row}, the row's value in `column`."""
        self.data.setdefault("plots", []).append(
            {
                "title": title,
                "x": x,
                "y": y,
                "column": column,
                "series": {k: {str(x): r for x, r in v.items()} for k, v in series.items()},
            }
        )

    def write(self, folder: Path = OUT) -> Path:
        """Check the finding as tools/results_pages.py will, and save it atomically; the path."""
        wrong = [w for w in _tool().problems(self.data) if not w.startswith("what_it_says")]  # a draft says it later
        if wrong:
            raise ValueError(f"finding {self.data['finding']}: " + "; ".join(wrong))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.data['finding']}.json"
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
            f.write(json.dumps(self.data, indent=1, ensure_ascii=False) + "\n")
        os.replace(f.name, path)
        return path


def _tool():
    spec = importlib.util.spec_from_file_location("results_pages", REPO / "tools" / "results_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
