"""Robustness experiments: sweep a generator knob, and a train-style x test-style matrix.

A sweep saves every finished step atomically under <out>/steps/, so `--resume` continues an
interrupted run without redoing finished steps; a step that fails is recorded and skipped.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .attack import Source, attack_source
from .dataset import GenerationSpec
from .errors import CaptchalabError
from .fileio import atomic_write_json
from .manifest import make_manifest

RATES = ("captcha_accuracy", "char_accuracy", "segmentation_rate")


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


@dataclass
class SweepConfig:
    model: str
    style: str
    knob: str                  # "strength" or a generator parameter name
    values: list[float]
    count: int = 1000
    seed: int = 100
    strength: float = 0.5      # used when the knob is a parameter
    params: dict = field(default_factory=dict)
    length: int = 4
    retrain: bool = False
    train_count: int = 2000
    train_epochs: int = 4
    workers: int = 2
    plugin_dirs: tuple[str, ...] = ()

    def spec(self, value: float, count: int, seed: int) -> GenerationSpec:
        params = dict(self.params)
        strength = self.strength
        if self.knob == "strength":
            strength = value
        else:
            params[self.knob] = value
        return GenerationSpec(self.style, count, self.length, self.length, seed=seed, strength=strength,
                              params=params, plugin_dirs=tuple(self.plugin_dirs))

    def check(self) -> None:
        for value in self.values:
            self.spec(value, self.count, self.seed).check()
        if self.count < 1:
            raise CaptchalabError(f"--count must be at least 1, got {self.count}")


def _step_file(out: Path, i: int) -> Path:
    return out / "steps" / f"step-{i:02d}.json"


def open_sweep(out: Path, config: SweepConfig, resume: bool) -> None:
    """Start a sweep folder, or check that --resume points at a sweep with the same settings."""
    marker = out / "sweep.json"
    if resume:
        if not marker.is_file():
            raise CaptchalabError(f"--resume: {out} is not a sweep folder (no sweep.json)")
        saved = json.loads(marker.read_text())
        if saved != json.loads(json.dumps(asdict(config))):
            raise CaptchalabError(f"--resume: the sweep in {out} was started with other options")
        return
    if out.exists() and any(out.iterdir()):
        raise CaptchalabError(f"{out} is not empty; use --resume to continue a sweep there, or another --out")
    try:
        (out / "steps").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {out}: {exc.strerror or exc}") from None
    atomic_write_json(marker, asdict(config))


def _examples(misread_and_right: list, path: Path) -> None:
    from .report import contact_sheet
    contact_sheet([im for im, _ in misread_and_right], [c for _, c in misread_and_right], path, columns=6,
                  cell_height=56)


def run_step(model, config: SweepConfig, i: int, value: float, out: Path) -> dict:
    spec = config.spec(value, config.count, config.seed + i)
    source = Source(spec=spec)
    result, misread = attack_source(model, source, workers=config.workers, misread_limit=6)
    step = {"step": i, "value": value, "status": "done", "count": result["count"],
            **{k: result[k] for k in RATES}, "seconds": result["seconds"],
            "captchas_per_second": result["captchas_per_second"],
            "confusion_matrix": result["confusion_matrix"], "parameters": result["source"]["parameters"]}
    first = [source.image(k) for k in range(min(3, config.count))]
    examples = [(image, text) for _, text, image, _ in first] + misread[:3]
    _examples(examples, out / "steps" / f"step-{i:02d}.png")
    step["examples"] = f"steps/step-{i:02d}.png"
    if config.retrain:
        from .model import load_model
        from .train import CAPTCHA_TRAINING, TrainConfig, train_captcha
        train_spec = config.spec(value, config.train_count, config.seed + 1000 + i)
        model_path = out / "steps" / f"attacker-{i:02d}.keras"
        tc = TrainConfig(**{**CAPTCHA_TRAINING, "epochs": config.train_epochs, "seed": config.seed + i})
        train_captcha(Source(spec=train_spec), model_path, Path(config.model), tc, workers=config.workers)
        adapted, _ = attack_source(load_model(model_path), source, workers=config.workers, misread_limit=0)
        step["retrained"] = {k: adapted[k] for k in RATES}
        step["retrained"]["model"] = str(model_path)
    return step


def run_sweep(model, config: SweepConfig, out: Path, resume: bool = False,
              on_step: Callable[[dict, int, int, float], None] | None = None) -> dict:
    """Run (or continue) a sweep; returns the report dict (also written as report.*).

    `on_step(step, steps_run, steps_left, seconds)` is called after every step this call runs.
    """
    config.check()
    open_sweep(out, config, resume)
    start = time.perf_counter()
    steps = []
    left = sum(not _step_file(out, i).is_file() for i in range(len(config.values)))
    ran = 0
    for i, value in enumerate(config.values):
        path = _step_file(out, i)
        if path.is_file():
            steps.append(json.loads(path.read_text()))
            continue
        try:
            step = run_step(model, config, i, value, out)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a failing step is recorded; the sweep goes on
            step = {"step": i, "value": value, "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                    "trace": traceback.format_exc(limit=3).splitlines()[-1]}
        atomic_write_json(path, step)
        steps.append(step)
        ran, left = ran + 1, left - 1
        if on_step:
            on_step(step, ran, left, time.perf_counter() - start)
    report = {"kind": "sweep", "style": config.style, "knob": config.knob, "steps": steps,
              "config": asdict(config),
              "manifest": make_manifest("report", command="sweep", config=asdict(config))}
    from .report import write_sweep_report
    write_sweep_report(out, report)
    return report


def run_matrix(train_styles: list[str], test_styles: list[str], out: Path, init_from: Path | None,
               count: int = 500, train_count: int = 2000, epochs: int = 4, seed: int = 200,
               strength: float = 0.5, workers: int = 2, plugin_dirs=(),
               on_progress: Callable[[str], None] | None = None) -> dict:
    """Train one attacker per training style and attack every test style."""
    from .model import load_model
    from .train import CAPTCHA_TRAINING, TrainConfig, train_captcha
    for style in dict.fromkeys(train_styles + test_styles):
        GenerationSpec(style, 1, strength=strength, plugin_dirs=tuple(plugin_dirs)).check()
    if count < 1 or train_count < 1:
        raise CaptchalabError("--count and --train-count must be at least 1")
    from .fileio import check_empty_or_force
    check_empty_or_force(out, force=False)
    models_dir = out / "models"
    cells = {}
    for a, train_style in enumerate(train_styles):
        path = models_dir / f"{train_style}.keras"
        spec = GenerationSpec(train_style, train_count, seed=seed + a, strength=strength,
                              plugin_dirs=tuple(plugin_dirs))
        tc = TrainConfig(**{**CAPTCHA_TRAINING, "epochs": epochs, "seed": seed + a})
        train_captcha(Source(spec=spec), path, init_from, tc, workers=workers)
        model = load_model(path)
        for b, test_style in enumerate(test_styles):
            test = GenerationSpec(test_style, count, seed=seed + 500 + b, strength=strength,
                                  plugin_dirs=tuple(plugin_dirs))
            result, _ = attack_source(model, Source(spec=test), workers=workers, misread_limit=0)
            cells[(train_style, test_style)] = {k: result[k] for k in RATES}
            if on_progress:
                on_progress(f"trained on {train_style}, tested on {test_style}: "
                            f"CAPTCHA accuracy {result['captcha_accuracy']:.2%}")
    report = {"kind": "matrix", "train_styles": train_styles, "test_styles": test_styles,
              "matrix": {rate: [[cells[(a, b)][rate] for b in test_styles] for a in train_styles]
                         for rate in RATES},
              "count": count, "train_count": train_count, "strength": strength,
              "manifest": make_manifest("report", command="matrix", train_styles=train_styles,
                                        test_styles=test_styles, count=count, train_count=train_count,
                                        seed=seed, strength=strength, epochs=epochs,
                                        initialised_from=str(init_from or "scratch"))}
    from .report import write_matrix_report
    write_matrix_report(out, report)
    return report
