"""Sliders and rotations, measured through the CLI with every default (trained attackers train
until they converge). Models and reports stay in --work: run it again to go on.

1. generation speed: 1,000 sliders and 1,000 rotations on 2 workers, beside 1,000 text CAPTCHAs
   (clean) in the same run;
2. sliders at strength 0.5 without decoys: the template matcher, ddddocr's slide_match (when
   installed) and the learned locator (trained on 5,000), 1,000 fresh sliders; then the decoy curve, 0 to 3 false gaps on the piece's row,
   for both and for a locator trained with two decoys;
3. rotations at strength 0.5, held out by picture: rotnet trained on 10,000 of three art styles
   (fresh pictures every epoch), tested on the fourth art style and on words, beside the
   orientation baseline; then the same on texture scenes (`scene=texture`: no horizon, so only
   the object tells up).

    python benchmarks/slider_rotation_targets.py [--work results/slider-rotation]

It writes results/published/sliders-and-decoys.json, rotation-held-out.json and slider-speed.json
(benchmarks/publish.py says how to publish them).
"""

import argparse
import json
import time
from pathlib import Path

from publish import Finding
from recipe_steps import cli, generation_rate, result_line, train_once, trainings_note


def attack(out: Path, *args) -> dict:
    if not (out / "report.json").is_file():
        cli("attack", *args, "--count", 1000, "--seed", 902, "--out", out, "--force")
    return json.loads((out / "report.json").read_text())


def line(label: str, r: dict, unit: str) -> str:
    error = r.get(f"mean_abs_error_{unit}")
    return result_line(
        label,
        r,
        f"within tolerance, mean error {error if error is None else round(error, 1)} "
        f"{unit}, {r['captchas_per_second']:.0f}/s",
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/slider-rotation")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    speed = Finding(
        "slider-speed",
        "Sliders: how fast each attacker reads them, and how fast they are drawn",
        "Sliders at strength 0.5 with 0 to 3 false gaps, on this machine's cores.",
        "what",
        "measure",
        ["speed"],
    )
    decoy_curve = Finding(
        "sliders-and-decoys",
        "Sliders and decoys: success within 5 pixels against false gaps",
        "1,000 fresh sliders at strength 0.5 per cell, with 0 to 3 false gaps on the piece's row; "
        "success within 5 pixels with its Wilson 95% interval.",
        "attacker",
        "false gaps on the piece's row",
        [0, 1, 2, 3],
    )
    rotation = Finding(
        "rotation-held-out",
        "Rotation held out by art style: success within 10 degrees",
        "Strength 0.5, 1,000 fresh pictures per row, held out by picture: rotnet trained on objects of "
        "three art styles (10,000 new pictures every epoch) and tested on the fourth (fluent) and on "
        "words; success within 10 degrees with its Wilson 95% interval.",
        "the test pictures",
        "test pictures",
        ["rotnet", "orientation (no training)"],
    )
    for style in ("clean", "slider", "rotation"):
        unit = {"clean": "CAPTCHAs/s", "slider": "sliders/s", "rotation": "pictures/s"}[style]
        rate = generation_rate(work, style)
        speed.add(f"generation of `{style}`, 2 workers (the whole command)", "speed", round(rate), "main", unit=unit)
    timings = {}
    locator, decoyed = work / "locator.keras", work / "locator-decoys2.keras"
    train_once(locator, timings, "locator", "--style", "slider", "--count", 5000)
    train_once(decoyed, timings, "locator with two decoys", "--style", "slider", "--param", "decoys=2", "--count", 5000)
    from importlib.util import find_spec

    ddddocr = ["--attacker", "ddddocr-slide"] if find_spec("ddddocr") else []  # its slider matcher, when installed
    for decoys in (0, 1, 2, 3):
        result = attack(
            work / f"slider-decoys{decoys}",
            "--model",
            locator,
            "--model",
            decoyed,
            "--attacker",
            "template",
            *ddddocr,
            "--style",
            "slider",
            "--param",
            f"decoys={decoys}",
        )
        for label, r in result["per_attacker"].items():
            print(line(f"slider, {decoys} decoys, {label}", r, "px"), flush=True)
            decoy_curve.add_attack(label, decoys, r, "main")
            speed.add(f"`{label}` reads, {decoys} decoys", "speed", r["captchas_per_second"], "main", unit="sliders/s")
    for scene, suffix in (("horizon", ""), ("texture", "-texture")):
        rotnet = work / f"rotnet{suffix}-without-fluent.keras"
        train_once(
            rotnet,
            timings,
            f"rotnet on three art styles, {scene} scenes",
            "--style",
            "rotation",
            "--param",
            "art=noto+twemoji+openmoji",
            "--param",
            "content=objects",
            "--param",
            f"scene={scene}",
            "--count",
            10000,
            "--fresh",
        )
        tests = [("held-out art (fluent)", ["--param", "art=fluent", "--param", "content=objects"])]
        if scene == "horizon":
            tests.append(("words", ["--param", "content=words"]))
        for label, params in tests:
            result = attack(
                work / f"rotation{suffix}-{label.split()[0]}",
                "--model",
                rotnet,
                "--attacker",
                "orientation",
                "--style",
                "rotation",
                "--param",
                f"scene={scene}",
                *params,
            )
            for name, r in result["per_attacker"].items():
                print(line(f"rotation, {scene} scenes, {label}, {name}", r, "degrees"), flush=True)
                column = "orientation (no training)" if name == "orientation" else "rotnet"
                error = r.get("mean_abs_error_degrees")
                rotation.add_attack(
                    f"{label}, {scene} scenes",
                    column,
                    r,
                    "main",
                    also=None
                    if error is None
                    else [{"what": "mean error", "value": round(error, 1), "unit": "degrees"}],
                )
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f} s", flush=True)
    for finding in (speed, decoy_curve, rotation):
        finding.run("main", time.perf_counter() - start, note=trainings_note(timings))
        print(finding.write(), flush=True)


if __name__ == "__main__":
    main()
