"""`sweep`: a short front-end that builds cells and runs them on the cell engine
(captchalab.study), so it shares its loop, its resume rule and its report writer with `matrix`
(matrix.py) and study files.

A sweep's cell is one step: the CAPTCHAs at one value of a generator knob, read by every
attacker given (and, with `retrain`, by an attacker trained on that step's generator).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .attackers.base import attacker_around, read_model_info
from .charset import DIGITS
from .data.dataset import GenerationSpec, Source
from .errors import CaptchalabError
from .kinds import get_kind
from .manifest import make_manifest
from .plots import contact_sheet
from .plugins import get_generator
from .study.backends import LocalBackend
from .study.report import write_study_report
from .study.cells import RATES, AttackerRef, Cell, Training, read_blob, rows_of, run_cell
from .study.engine import run_grid, study_marker


def parse_range(text: str, what: str) -> list[float]:
    """'A:B:N' -> N evenly spaced values from A to B (A < B, N >= 2; or A:A:1)."""
    parts = text.split(":")
    try:
        low, high, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise CaptchalabError(f"{what} {text!r}: expected A:B:N, for example 0:1:6") from None
    if n < 1:
        raise CaptchalabError(f"{what} {text!r}: N must be at least 1")
    if low > high:
        raise CaptchalabError(f"{what} {text!r}: start {low} is above end {high}")
    if n == 1 and low != high:
        raise CaptchalabError(f"{what} {text!r}: one step needs A == B")
    if n > 1 and low == high:
        raise CaptchalabError(f"{what} {text!r}: several steps need A < B")
    return [round(float(v), 6) for v in np.linspace(low, high, n)]


def parse_knob(style: str, strength: str | None, param: str | None, plugin_dirs=()) -> tuple[str, list[float]]:
    """What a sweep turns and its values, from exactly one of --strength A:B:N and --param name=A:B:N."""
    if (strength is None) == (param is None):
        raise CaptchalabError("give exactly one of `strength` A:B:N and `param` name=A:B:N")
    if strength is not None:
        return "strength", parse_range(strength, "`strength`")
    knob, sep, spec = param.partition("=")
    if not sep:
        raise CaptchalabError(f"`param` {param!r}: expected name=A:B:N")
    get_generator(style, list(plugin_dirs)).param(knob)
    return knob, parse_range(spec, "`param`")


@dataclass
class SweepConfig:
    model: str | None  # the first attacker's model file (None: read-only attackers alone)
    style: str
    knob: str  # "strength" or a generator parameter name
    values: list[float]
    count: int = 1000
    seed: int = 100  # step i's CAPTCHAs use seed + i
    strength: float = 0.5  # used when the knob is a parameter
    params: dict = field(default_factory=dict)
    length: int = 4
    retrain: bool = False
    train_count: int = 2000
    train_epochs: int | None = None  # at most (None: until the retrained attacker converges)
    workers: int = 2
    plugin_dirs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # further attackers' model files
    readers: tuple[str, ...] = ()  # read-only attackers as NAME[:name=value,...] (ddddocr)
    charset: str = DIGITS

    def spec(self, value: float, count: int, seed: int) -> GenerationSpec:
        params = dict(self.params)
        strength = self.strength
        if self.knob == "strength":
            strength = value
        else:
            params[self.knob] = value
        return GenerationSpec(
            self.style, count, self.length, self.length, self.charset, seed, strength, params, tuple(self.plugin_dirs)
        )

    def check(self) -> None:
        if self.count < 1:
            raise CaptchalabError(f"`count` must be at least 1, got {self.count}")
        if self.model is None and (self.models or not self.readers):
            raise CaptchalabError("a sweep needs at least one attacker: a model, or a read-only attacker")
        if self.retrain and self.model is None:
            raise CaptchalabError("retraining needs a model: it trains the first model's attacker afresh at every step")
        for value in self.values:
            self.spec(value, self.count, self.seed).check()


def _label(path: str) -> str:
    return f"{Path(path).stem} ({read_model_info(Path(path))['attacker']})"


def step_cell(config: SweepConfig, i: int, value: float) -> Cell:
    refs = [AttackerRef(_label(m), model=m) for m in (config.model, *config.models) if m is not None]
    refs += [AttackerRef(name, name=name, charset=config.charset) for name in config.readers]
    if config.retrain:
        train_spec = config.spec(value, config.train_count, config.seed + 1000 + i)
        refs.append(
            AttackerRef(
                "retrained",
                training=Training(
                    read_model_info(Path(config.model))["attacker"],
                    train_spec,
                    config.model,
                    (),
                    config.train_epochs,
                    config.seed + i,
                ),
            )
        )
    return Cell(
        f"step-{i:02d}", {config.knob: value}, config.spec(value, config.count, config.seed + i), refs, examples=3
    )


def step_from_cell(result: dict, config: SweepConfig, i: int, value: float) -> dict:
    """A sweep step in the sweep's own format: the first attacker's numbers at the top level."""
    if result["status"] != "done" and "per_attacker" not in result:
        return {"step": i, "value": value, "status": "failed", "error": result.get("error", "")}
    per = result["per_attacker"]
    first = per[next(iter(per))]
    step = {
        "step": i,
        "value": value,
        "status": result["status"],
        **{
            k: first.get(k)
            for k in (
                "count",
                "captcha_accuracy",
                "char_accuracy",
                "segmentation_rate",
                "segmentation_box_rate",
                "captchas_per_second",
                "confusion_matrix",
                "confusion_labels",
                "misread",
            )
        },
        "seconds": result["seconds"],
        "parameters": result["test"]["parameters"],
        "per_attacker": per,
    }
    if result["status"] != "done":
        step["error"] = "; ".join(f"{k}: {v.get('error')}" for k, v in per.items() if v["status"] != "done")
    if "retrained" in per and per["retrained"]["status"] == "done":
        step["retrained"] = {k: per["retrained"].get(k) for k in RATES}
    return step


def _models(cell: Cell, out: Path) -> dict:
    """The model bytes a step needs, read here (in-process runs)."""
    blobs = {}
    for ref in cell.attackers:
        if ref.model:
            blobs[ref.model] = read_blob(ref.model)
        elif ref.training:
            saved = out / "models" / f"{ref.training.key()}.keras"
            if saved.is_file():
                blobs[ref.training.key()] = read_blob(saved)
    return blobs


def run_step(model, config: SweepConfig, i: int, value: float, out: Path) -> dict:
    """One step, in this process: every attacker on the CAPTCHAs at `value`. `model` may be the
    first attacker's network already in memory (or None)."""
    cell = step_cell(config, i, value)
    cell.workers = config.workers
    loaded = {}
    if model is not None:
        loaded[cell.attackers[0].label] = (
            model if hasattr(model, "read_prepared") else attacker_around(model, config.model, config.plugin_dirs)
        )
    return step_from_cell(run_cell(cell, _models(cell, out), loaded), config, i, value)


def _in_process_step(model, config, out, cell: Cell, models: dict) -> dict:
    i = int(cell.id.split("-")[1])
    return run_step(model, config, i, cell.coords[config.knob], out)  # looked up here: tests may replace it


def _remote_step(config: SweepConfig, cell: Cell, models: dict) -> dict:
    i = int(cell.id.split("-")[1])
    return step_from_cell(run_cell(cell, models), config, i, cell.coords[config.knob])


def _examples(out: Path, config: SweepConfig, step: dict) -> None:
    """The step's first CAPTCHAs and its first misread ones (truth -> guess), as one sheet."""
    source = Source(spec=config.spec(step["value"], config.count, config.seed + step["step"]))
    drawn = get_kind(source.kind).picture
    shown = [(drawn(source.sample(k).image), source.sample(k).text) for k in range(min(3, config.count))]
    for index, guess in (step.get("misread") or [])[:3]:
        sample = source.sample(index)
        shown.append((drawn(sample.image), f"{sample.text} -> {guess or '?'}"))
    path = out / "steps" / f"step-{step['step']:02d}.png"
    contact_sheet([im for im, _ in shown], [c for _, c in shown], path=path, columns=6, cell_height=56)
    step["examples"] = f"steps/step-{step['step']:02d}.png"


def run_sweep(
    model,
    config: SweepConfig,
    out: Path,
    resume: bool = False,
    on_step: Callable[[dict, int, int, float], None] | None = None,
    backend=None,
) -> dict:
    """Run (or continue) a sweep; returns the report dict (also written as report.*).

    `on_step(step, steps_run, steps_left, seconds)` is called after every step this call runs.
    """
    config.check()
    study_marker(out, asdict(config), resume, marker="sweep.json")
    (out / "steps").mkdir(exist_ok=True)
    backend = backend or LocalBackend()
    cells = [step_cell(config, i, v) for i, v in enumerate(config.values)]
    in_process = isinstance(backend, LocalBackend) and backend.jobs == 1
    runner = partial(_in_process_step, model, config, out) if in_process else partial(_remote_step, config)

    def each(step: dict, progress) -> None:  # before the engine saves the step
        i = int(step.pop("id").split("-")[1]) if "id" in step else step["step"]
        step.setdefault("step", i)
        step.setdefault("value", config.values[i])
        step.pop("coords", None)
        if step["status"] == "done":
            _examples(out, config, step)
        if on_step:
            on_step(step, progress.ran, progress.left, progress.seconds)

    steps = run_grid(cells, out, backend, resume, cell_dir="steps", runner=runner, on_cell=each)
    for cell, step in zip(cells, steps):
        for ref in cell.attackers:  # the retrained attacker also under its step's name
            trained = ref.training and out / "models" / f"{ref.training.key()}.keras"
            if trained and trained.is_file():
                for suffix in (".keras", ".json"):
                    shutil.copyfile(trained.with_suffix(suffix), out / "steps" / f"attacker-{step['step']:02d}{suffix}")
                step.setdefault("retrained", {})["model"] = str(out / "steps" / f"attacker-{step['step']:02d}.keras")
    report = {
        "kind": "sweep",
        "style": config.style,
        "knob": config.knob,
        "steps": steps,
        "config": asdict(config),
        "rows": rows_of(steps, lambda s: {config.knob: s["value"]}),
        "manifest": make_manifest("report", command="sweep", config=asdict(config)),
    }
    images = [
        (f"{config.knob} = {s['value']}: examples (truth; misread ones as truth -> guess)", out / s["examples"])
        for s in steps
        if s.get("examples")
    ]
    write_study_report(out, f"Sweep: {config.style} {config.knob}", report, [config.knob], images)
    return report
