"""Adversarial CAPTCHAs: PGD-10 generation throughput against a ctc model (batched gradients),
beside the same work one image at a time (the plain baseline), and the whole
`captchalab adversarial` report for 5 eps values x 500 CAPTCHAs x 2 attackers.

    python benchmarks/adversarial_speed.py --ctc models/ctc-distorted.keras --segment models/segment-distorted.keras

It writes results/published/adversarial-speed.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from captchalab.data.dataset import GenerationSpec, Source
from publish import Finding


def main():
    from captchalab.attackers import load_attacker
    from captchalab.generation.adversarial import PerturbSpec
    from captchalab.study.adversarial import perturb_all

    parser = argparse.ArgumentParser()
    parser.add_argument("--ctc", required=True)
    parser.add_argument("--segment", required=True)
    parser.add_argument("--count", type=int, default=256)
    args = parser.parse_args()
    target = load_attacker(args.ctc)
    source = Source(spec=GenerationSpec("distorted", args.count, seed=7, strength=0.5))
    samples = [source.sample(i) for i in range(args.count)]
    images, texts, boxes = [s.image for s in samples], [s.text for s in samples], [s.boxes for s in samples]
    spec = PerturbSpec("pgd", 16, 10, seed=1)  # one random start, no restarts
    perturb_all(target, images[:32], texts[:32], boxes[:32], spec)  # trace outside the timing
    start = time.perf_counter()
    perturb_all(target, images[:32], texts[:32], boxes[:32], spec, batch=1)
    single = 32 / (time.perf_counter() - start)
    print(f"PGD-10 one CAPTCHA at a time (baseline): {single:.1f} CAPTCHAs/s", flush=True)
    start = time.perf_counter()
    perturb_all(target, images, texts, boxes, spec)
    batched = args.count / (time.perf_counter() - start)
    print(f"PGD-10 in batches of 32: {batched:.1f} CAPTCHAs/s ({batched / single:.1f}x)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "captchalab",
                "adversarial",
                "--style",
                "distorted",
                "--against",
                args.ctc,
                "--transfer",
                args.segment,
                "--count",
                "500",
                "--eps",
                "0,2,4,8,16/255",
                "--out",
                str(Path(tmp) / "adv"),
            ],
            check=True,
            capture_output=True,
        )
        report = time.perf_counter() - start
        print(
            f"captchalab adversarial, 5 eps x 500 CAPTCHAs x 2 attackers (+ ddddocr if installed), "
            f"4 defences: {report:.0f} s"
        )
    finding = Finding(
        "adversarial-speed",
        "Adversarial CAPTCHAs: how fast they are made",
        "PGD-10 (one random start, no restarts) at eps 16/255 against ctc, four-digit `distorted` CAPTCHAs at strength 0.5.",
        "the work",
        "work",
        ["speed", "time"],
    )
    finding.add("PGD-10 against ctc, one CAPTCHA at a time", "speed", round(single, 1), "run", unit="CAPTCHAs/s")
    finding.add("PGD-10 against ctc, in batches of 32", "speed", round(batched, 1), "run", unit="CAPTCHAs/s")
    finding.add(
        "the whole `adversarial` report (5 eps x 500 CAPTCHAs, ctc and segment, 4 defences)",
        "time",
        round(report),
        "run",
        unit="s",
    )
    finding.run("run")
    print(finding.write())


if __name__ == "__main__":
    main()
