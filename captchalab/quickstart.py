"""The whole toolkit in one short run: MNIST → CAPTCHA attacker → strength sweep → pictures."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Callable

from .attackers.base import TrainSettings, get_attacker
from .data.dataset import GenerationSpec, Source
from .data.mnist import Mnist
from .fileio import atomic_dir
from .model import load_model
from .pretrained import ensure_base
from .report import describe_verdict, png_data_uri
from .sweep import SweepConfig, run_sweep
from .train import TrainConfig, train_attacker, train_mnist
from .visualize import render_all


def run_quickstart(
    mnist: Mnist,
    out: Path,
    say: Callable[[str], None],
    mnist_epochs: int = 2,
    train_count: int = 3000,
    ctc_count: int = 4000,
    sweep_count: int = 300,
    workers: int = 2,
    force: bool = False,
    budget: int | None = None,
) -> dict:
    """Build results/quickstart (atomically) and return a summary. Both attackers train until they
    converge (`budget` caps the examples each sees; tests set a small one) and the page says
    whether they did."""
    start = time.perf_counter()
    summary = {}
    with atomic_dir(out, force, ours="report.html") as tmp:
        say(f"1/5 training the network on MNIST ({mnist_epochs} short epochs)")
        info = train_mnist(mnist, tmp / "mnist.keras", TrainConfig(epochs=mnist_epochs))
        summary["mnist_test_accuracy"] = info["test_accuracy"]
        say(f"    MNIST test accuracy {info['test_accuracy']:.2%}")
        say(
            f"2/5 training the segment attacker on {train_count} distorted CAPTCHAs, from the MNIST weights, "
            "until it converges"
        )
        summary.update(_train_reader("segment", train_count, 1, tmp / "mnist.keras", tmp, budget, workers, say))
        base = ensure_base("ctc", "0123456789", say)
        say(
            f"3/5 training the ctc attacker (no segmentation) on {ctc_count} distorted CAPTCHAs, from its base "
            f"({base.name}: a CRNN that read a mixture of the built-in styles), until it converges"
        )
        summary.update(_train_reader("ctc", ctc_count, 3, base, tmp, budget, workers, say))
        say(f"4/5 sweeping the distorted style's strength from 0 to 1 ({sweep_count} CAPTCHAs a step, both attackers)")
        summary["sweep"] = _sweep(tmp, sweep_count, workers)
        for value, read in summary["sweep"]:
            say(
                f"    strength {value:g}: "
                + ", ".join(
                    f"{name} {'failed' if accuracy is None else f'{accuracy:.1%}'}" for name, accuracy in read.items()
                )
            )
        say("5/5 drawing every layer for a 2 and a 4 from the MNIST test set")
        two = int((mnist.y_test == 2).argmax())
        four = int((mnist.y_test == 4).argmax())
        (tmp / "visualize").mkdir()
        vis = render_all(
            load_model(tmp / "mnist.keras"),
            mnist.x_test[two],
            tmp / "visualize",
            f"mnist #{two} (a 2)",
            mnist.x_test[four],
            f"mnist #{four} (a 4)",
        )
        summary["most_apart"] = vis["most_apart"]
        summary["seconds"] = round(time.perf_counter() - start, 1)
        (tmp / "report.html").write_text(_page(summary, tmp))
    return summary


def _train_reader(
    name: str,
    count: int,
    seed: int,
    start: Path,
    folder: Path,
    budget: int | None,
    workers: int,
    say: Callable[[str], None],
) -> dict:
    """Train attacker `name` on `count` distorted CAPTCHAs from `start` until it converges, into
    `folder`/NAME.keras; its validation accuracy and verdict as summary fields."""
    spec = GenerationSpec("distorted", count, seed=seed, strength=0.5)
    info = train_attacker(
        get_attacker(name)(),
        Source(spec=spec),
        folder / f"{name}.keras",
        TrainSettings(seed=seed, budget=budget),
        start,
        workers=workers,
    )
    state = describe_verdict(info.get("convergence"))
    say(f"    CAPTCHA validation accuracy {info['val_accuracy']:.2%}; {state}")
    return {f"{name}_val_accuracy": info["val_accuracy"], f"{name}_state": state}


def _sweep(folder: Path, count: int, workers: int) -> list:
    """Both attackers over the distorted style's strength: (value, {attacker: CAPTCHA accuracy}) per step."""
    config = SweepConfig(
        model=str(folder / "segment.keras"),
        models=(str(folder / "ctc.keras"),),
        style="distorted",
        knob="strength",
        values=[0.0, 0.25, 0.5, 0.75, 1.0],
        count=count,
        workers=workers,
    )
    sweep = run_sweep(None, config, folder / "sweep")
    return [
        (s["value"], {k: v.get("captcha_accuracy") for k, v in (s.get("per_attacker") or {}).items()})
        for s in sweep["steps"]
    ]


def _page(summary: dict, folder: Path) -> str:
    curve = png_data_uri(folder / "sweep" / "curve.png")
    similarity = png_data_uri(folder / "visualize" / "similarity.png")
    names = list(dict.fromkeys(k for _, per in summary["sweep"] for k in per))
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{v}</td>"
        + "".join(f"<td>{per[n]:.1%}</td>" if per.get(n) is not None else "<td>failed</td>" for n in names)
        + "</tr>"
        for v, per in summary["sweep"]
    )
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>captchalab quickstart</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
td,th{{border:1px solid #ccc;padding:4px 10px}}table{{border-collapse:collapse}}img{{max-width:100%}}</style>
</head><body><h1>captchalab quickstart</h1>
<p>Finished in {summary["seconds"]:.0f} s. Everything here was trained and measured just now, on this machine.</p>
<h2>1. The network on MNIST</h2><p>Test accuracy after a short run: <b>{summary["mnist_test_accuracy"]:.2%}</b>
(the full <code>captchalab train mnist</code> goes further).</p>
<h2>2. Two attackers for the distorted style</h2><p><b>segment</b> (the seed's pipeline) cuts each CAPTCHA
into characters with OpenCV and reads them with the network fine-tuned from its MNIST weights: CAPTCHA
validation accuracy <b>{summary["segment_val_accuracy"]:.2%}</b>, {html.escape(summary["segment_state"])}.
<b>ctc</b> reads the whole image with a small CRNN trained with CTC, no segmentation, fine-tuned from a base
that read the built-in styles: CAPTCHA validation accuracy <b>{summary["ctc_val_accuracy"]:.2%}</b>,
{html.escape(summary["ctc_state"])}. Each trained until its validation score stopped improving; a number from
an attacker that had not converged is only a lower bound.</p>
<h2>3. How much harder does distortion make it, for each?</h2>
<table><tr><th>strength</th>{head}</tr>{rows}</table>
<p><a href="sweep/report.html">The full sweep report</a> (curves, confusion matrix, examples).</p>
<img src="{curve}" alt="accuracy vs strength">
<h2>4. Inside the seed's network</h2><p>A 2 and a 4 from the MNIST test set go through every layer; they are most
apart at <b>{html.escape(summary["most_apart"])}</b>.
<a href="visualize/index.html">See every feature map, layer by layer</a>.</p>
<img src="{similarity}" alt="similarity per layer"></body></html>
"""
