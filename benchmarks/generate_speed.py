"""Generation throughput: `generate --style distorted` with 1 and 2 workers, next to the captcha
package's ImageCaptcha (the plain baseline) in the same run.

    python benchmarks/generate_speed.py [--count 2000] [--style distorted]

It writes results/published/generate-speed.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from captchalab.data.dataset import GenerationSpec, generate_dataset
from publish import Finding


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--style", default="distorted")
    args = parser.parse_args()
    from captcha.image import ImageCaptcha

    baseline = ImageCaptcha()
    start = time.perf_counter()
    for i in range(500):
        baseline.generate_image(f"{i % 10000:04d}")
    rate = 500 / (time.perf_counter() - start)
    print(f"baseline ImageCaptcha.generate_image, 1 core: {rate:.0f} images/s")
    finding = Finding(
        "generate-speed",
        "Generation throughput",
        f"`{args.style}` at strength 0.5, {args.count:,} "
        "CAPTCHAs written as PNGs, beside the captcha package's ImageCaptcha in the same run.",
        "the work",
        "work",
        ["speed"],
    )
    finding.add(
        "baseline: ImageCaptcha.generate_image, 1 core, in memory", "speed", round(rate), "run", unit="images/s"
    )
    tmp = Path(tempfile.mkdtemp())
    try:
        for workers in (1, 2):
            spec = GenerationSpec(args.style, args.count, 4, 4, seed=0, strength=0.5)
            start = time.perf_counter()
            generate_dataset(spec, tmp / f"w{workers}", workers=workers)
            took = time.perf_counter() - start
            print(
                f"generate --style {args.style} --length 4 --workers {workers}: "
                f"{args.count / took:.0f} images/s ({args.count} images, PNGs written, {took:.1f} s)"
            )
            finding.add(
                f"`generate --style {args.style}`, {workers} worker processes",
                "speed",
                round(args.count / took),
                "run",
                unit="images/s",
            )
        finding.run("run")
        print(finding.write())
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
