"""Attack throughput (model load excluded) of each attacker in the same run, on the same 2,000
four-character PNGs on disk, next to a plain baseline and each network's ceiling.

Baseline: segment every CAPTCHA in one process, then one Keras `predict` call per CAPTCHA.
Ours: `attack_many`: decoding and preparing (segmenting / resizing) in worker processes while
the main process reads prepared batches with the network.

    python benchmarks/attack_speed.py --segment models/segment-distorted.keras \
        --ctc models/ctc-distorted.keras [--count 2000]

It writes results/published/attack-speed.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from captchalab.attack import attack_many
from captchalab.data.dataset import GenerationSpec, Source, generate_dataset, read_dataset
from publish import Finding


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
            ["speed"],
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
        for attacker in attackers:
            prepared = [attacker.prepare(im, 4) for im in images]
            attacker.read_prepared(prepared[:8])
            start = time.perf_counter()
            for first in range(0, len(prepared), 256):
                attacker.read_prepared(prepared[first : first + 256])
            ceiling = len(prepared) / (time.perf_counter() - start)
            print(f"{attacker.name}: network alone (the ceiling), batches of 256: {ceiling:.0f} CAPTCHAs/s", flush=True)
            finding.add(
                f"{attacker.name}: the network alone, batches of 256", "speed", round(ceiling), "run", unit="CAPTCHAs/s"
            )
            for workers in (0, 2):
                result, _ = attack_many([attacker], {args.style: dataset}, workers=workers)
                print(
                    f"{attacker.name}: attack --dataset ({args.count} PNGs on disk), workers={workers}: "
                    f"{result['captchas_per_second']:.0f} CAPTCHAs/s, accuracy {result['captcha_accuracy']:.2%}",
                    flush=True,
                )
                finding.add(
                    f"{attacker.name}: `attack`, {workers} worker processes",
                    "speed",
                    result["captchas_per_second"],
                    "run",
                    unit="CAPTCHAs/s",
                )
        finding.run("run")
        print(finding.write())


if __name__ == "__main__":
    main()
