"""`matrix`: a short front-end on the cell engine (captchalab.study), as `sweep` is. A matrix's
cell is one test design, read by one attacker of each kind per training design; the report is a
heat map per attacker kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .attackers.base import make_attacker
from .charset import DIGITS
from .data.dataset import GenerationSpec
from .errors import CaptchalabError
from .manifest import make_manifest
from .plugins import get_generator
from .registry import split_attacker_spec
from .study.backends import LocalBackend
from .study.cells import RATES, AttackerRef, Cell, Training, rows_of
from .study.engine import run_grid, study_marker
from .study.report import write_study_report


def parse_design(design: str, plugin_dirs=()) -> tuple[str, dict]:
    """A design of a matrix axis: a style, or a style with parameters, `STYLE:name=value:name=value`
    (for example `grid3:art=noto` or `distorted:rotate=40`)."""
    style, *assignments = [part.strip() for part in design.split(":")]
    return style, get_generator(style, list(plugin_dirs)).parse_params(assignments)


@dataclass
class MatrixConfig:
    """A transfer matrix: one attacker of each kind trained per training design, each reading every
    test design (a design is a style, or a style with parameters: `grid3:art=noto`, see
    `parse_design`)."""

    train_styles: list[str]
    test_styles: list[str]
    attackers: list[str] = field(default_factory=lambda: ["segment"])  # NAME[:name=value,...]
    starts: dict = field(default_factory=dict)  # per attacker spec: the model it starts from (absent: scratch)
    count: int = 500
    train_count: int = 2000
    epochs: int | None = None  # at most (None: until each attacker converges)
    seed: int = 200
    strength: float = 0.5
    workers: int = 2
    charset: str = DIGITS
    plugin_dirs: tuple[str, ...] = ()

    def check(self) -> None:
        if self.count < 1 or self.train_count < 1:
            raise CaptchalabError("`count` and `train_count` must be at least 1")
        for design in dict.fromkeys(self.train_styles + self.test_styles):
            self.spec(design, 1, self.seed).check()

    def spec(self, design: str, count: int, seed: int) -> GenerationSpec:
        style, params = parse_design(design, self.plugin_dirs)
        return GenerationSpec(
            style,
            count,
            charset=self.charset,
            seed=seed,
            strength=self.strength,
            params=params,
            plugin_dirs=tuple(self.plugin_dirs),
        )

    def label(self, spec: str, design: str) -> str:
        return f"trained on {design}" if len(self.attackers) == 1 else f"{spec} trained on {design}"

    def settings(self) -> dict:
        return {
            "train_styles": self.train_styles,
            "test_styles": self.test_styles,
            "count": self.count,
            "train_count": self.train_count,
            "epochs": self.epochs,
            "seed": self.seed,
            "strength": self.strength,
            "attackers": self.attackers,
            "charset": self.charset,
            "from": {spec: str(self.starts.get(spec) or "scratch") for spec in self.attackers},
        }


def matrix_cells(config: MatrixConfig) -> list[Cell]:
    """One cell per test design; every attacker kind learns from the same CAPTCHAs of a training
    design."""
    refs = []
    for spec in config.attackers:
        name, assignments = split_attacker_spec(spec)
        hyper = make_attacker(name, config.charset, list(config.plugin_dirs)).parse_params(assignments)
        start = str(config.starts[spec]) if config.starts.get(spec) else "scratch"
        for k, design in enumerate(config.train_styles):
            training = Training(
                name,
                config.spec(design, config.train_count, config.seed + k),
                start,
                tuple(sorted(hyper.items())),
                config.epochs,
                config.seed + k,
            )
            refs.append(AttackerRef(config.label(spec, design), training=training))
    return [
        Cell(
            f"test-{k}", {"style": b}, config.spec(b, config.count, config.seed + 500 + k), refs, workers=config.workers
        )
        for k, b in enumerate(config.test_styles)
    ]


def run_matrix(
    config: MatrixConfig,
    out: Path,
    resume: bool = False,
    on_progress: Callable[[str], None] | None = None,
    backend=None,
) -> dict:
    """Run (or continue) a transfer matrix; returns the report dict (also written as report.*)."""
    config.check()
    settings = config.settings()
    study_marker(out, settings, resume, marker="matrix.json")

    def each(result, progress):
        if on_progress:
            for name, r in (result.get("per_attacker") or {}).items():
                state = f"CAPTCHA accuracy {r['captcha_accuracy']:.2%}" if r["status"] == "done" else "failed"
                on_progress(f"{name}, tested on {result['coords']['style']}: {state}")

    def trained(training, outcome):
        if on_progress:
            on_progress(
                f"trained {training.attacker} on {training.spec.style}"
                if outcome["status"] == "done"
                else f"training {training.attacker} on {training.spec.style} failed: {outcome['error']}"
            )

    results = run_grid(matrix_cells(config), out, backend or LocalBackend(), resume, on_cell=each, on_training=trained)
    per_cell = {r["coords"]["style"]: r.get("per_attacker") or {} for r in results}
    matrices = {
        spec: {
            rate: [
                [per_cell[b].get(config.label(spec, a), {}).get(rate) for b in config.test_styles]
                for a in config.train_styles
            ]
            for rate in RATES
        }
        for spec in config.attackers
    }
    first = config.attackers[0]
    report = {
        "kind": "matrix",
        "train_styles": config.train_styles,
        "test_styles": config.test_styles,
        "matrix": matrices[first],
        "count": config.count,
        "train_count": config.train_count,
        "strength": config.strength,
        "attacker": first,
        "rows": rows_of(results, lambda r: {"style": r["coords"]["style"]}),
        "manifest": make_manifest("report", command="matrix", **settings),
    }
    if len(config.attackers) > 1:
        report["matrices"] = matrices
    write_study_report(out, "Transfer matrix", report, [])
    return report
