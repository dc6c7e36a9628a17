"""Attack throughput (model load excluded) of each attacker in the same run, on the same 2,000
four-character PNGs on disk, next to a plain baseline and each network's ceiling.

Baseline: segment every CAPTCHA in one process, then one Keras `predict` call per CAPTCHA.
Ours: `attack_many`: decoding and preparing (segmenting / resizing) in worker processes while
the main process reads prepared batches with the network.
The ceiling: the same network reading the same CAPTCHAs already prepared, in the attack's batches,
with the same threads. Both are medians of 5 rounds. Beside it, the most the machine's cores could read if they did nothing but
prepare and read (their CPU time per CAPTCHA, each measured alone): an attack cannot pass that.

    python benchmarks/attack_speed.py --segment models/segment-distorted.keras \
        --ctc models/ctc-distorted.keras [--count 2000]

It writes results/published/attack-speed.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from captchalab.attack import READ_BATCH, attack_many, prepare_source
from captchalab.data.dataset import GenerationSpec, Source, generate_dataset, read_dataset
from publish import Finding

ROUNDS = 5  # an attack of 2,000 CAPTCHAs takes under 2 s: single runs vary by a quarter; medians


def main():
    from captchalab.attackers import load_attacker  # here, not at the top: workers re-import this script

    parser = argparse.ArgumentParser()
    parser.add_argument("--segment", required=True)
    parser.add_argument("--ctc")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--style", default="distorted")
    args = parser.parse_args()
    spec = GenerationSpec(args.style, args.count, 4, 4, seed=5, strength=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(spec, Path(tmp) / "ds", workers=2)
        dataset = Source(dataset=read_dataset(Path(tmp) / "ds"))
        images = [dataset.sample(i).image for i in range(len(dataset))]
        segment = load_attacker(args.segment)
        finding = Finding(
            "attack-speed",
            "Attack throughput",
            f"{args.count:,} four-character `{args.style}` PNGs "
            "at strength 0.5 on disk, model load excluded; every number from this run.",
            "the work",
            "work",
            ["speed", "share of the ceiling"],
        )
        start = time.perf_counter()
        for image in images[:300]:
            crops, _ = segment.prepare(image, 4)
            segment.model.predict(crops[..., None] / np.float32(255), verbose=0)
        baseline = 300 / (time.perf_counter() - start)
        print(f"baseline (segment, then predict per CAPTCHA, 300 CAPTCHAs): {baseline:.0f} CAPTCHAs/s", flush=True)
        finding.add(
            "baseline: segment, then one `predict` per CAPTCHA", "speed", round(baseline), "run", unit="CAPTCHAs/s"
        )
        attackers = [segment] + ([load_attacker(args.ctc)] if args.ctc else [])
        cores = len(os.sched_getaffinity(0))
        for attacker in attackers:
            # what the workers do for each CAPTCHA (read, decode, prepare), here in one process
            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # as in a worker process: OpenCV's own threads would count their waiting
            cpu = time.process_time()
            prepared = [it.prepared for chunk in prepare_source(attacker, dataset, 4, workers=0) for it in chunk]
            preparing = (time.process_time() - cpu) / args.count
            cv2.setNumThreads(threads)
            attacker.read_prepared(prepared[:8])
            start, cpu = time.perf_counter(), time.process_time()
            speeds = []
            for _ in range(ROUNDS):
                lap = time.perf_counter()
                for first in range(0, len(prepared), READ_BATCH):
                    attacker.read_prepared(prepared[first : first + READ_BATCH])
                speeds.append(len(prepared) / (time.perf_counter() - lap))
            seconds, reading = time.perf_counter() - start, (time.process_time() - cpu) / (ROUNDS * args.count)
            ceiling = statistics.median(speeds)
            # the most an attack could read if its cores did nothing but prepare and read
            bound = min(ceiling, cores / (preparing + reading))
            print(
                f"{attacker.name}: network alone (the ceiling), batches of {READ_BATCH}: {ceiling:.0f} CAPTCHAs/s "
                f"({reading * 1e3:.2f} cpu-ms each, {reading * ROUNDS * args.count / seconds:.2f} cores busy); "
                f"preparing: {preparing * 1e3:.2f} cpu-ms each; both on {cores} cores at most "
                f"{bound:.0f} CAPTCHAs/s ({bound / ceiling:.0%} of the ceiling)",
                flush=True,
            )
            finding.add(
                f"{attacker.name}: the network alone (the ceiling), batches of {READ_BATCH}",
                "speed",
                round(ceiling),
                "run",
                unit="CAPTCHAs/s",
            )
            finding.add(
                f"{attacker.name}: the most {cores} cores could read, preparing included",
                "speed",
                round(bound),
                "run",
                unit="CAPTCHAs/s",
            )
            finding.add(
                f"{attacker.name}: the most {cores} cores could read, preparing included",
                "share of the ceiling",
                round(100 * bound / ceiling),
                "run",
                unit="%",
            )
            for workers in (0, 2):
                results = [attack_many([attacker], {args.style: dataset}, workers=workers)[0] for _ in range(ROUNDS)]
                speeds = sorted(r["captchas_per_second"] for r in results)
                speed = statistics.median(speeds)
                print(
                    f"{attacker.name}: attack --dataset ({args.count} PNGs on disk), workers={workers}: "
                    f"{speed:.0f} CAPTCHAs/s ({speed / ceiling:.0%} of the ceiling; {speeds[0]:,.0f} to "
                    f"{speeds[-1]:,.0f} in {ROUNDS} rounds), accuracy {results[0]['captcha_accuracy']:.2%}",
                    flush=True,
                )
                row = f"{attacker.name}: `attack`, {workers} worker processes"
                finding.add(
                    row,
                    "speed",
                    round(speed),
                    "run",
                    unit="CAPTCHAs/s",
                    note=f"{speeds[0]:,.0f}-{speeds[-1]:,.0f} in {ROUNDS} rounds",
                )
                finding.add(row, "share of the ceiling", round(100 * speed / ceiling), "run", unit="%")
        finding.run("run")
        print(finding.write())


if __name__ == "__main__":
    main()
