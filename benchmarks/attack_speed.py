"""Attack throughput (model load excluded) next to a plain baseline in the same run.

Baseline: segment every CAPTCHA in one process, then one Keras `predict` call per CAPTCHA.
Ours: `attack_many` — decoding and segmentation in worker processes (workers=0: in the main
process) overlapping batched inference in the main process.

    python benchmarks/attack_speed.py --model models/distorted.keras [--count 2000]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from captchalab.attack import Reader, Source, attack_many
from captchalab.dataset import GenerationSpec, generate_dataset, read_dataset, render_many
from captchalab.segment import segment


def main():
    from captchalab.model import load_model  # here, not at the top: worker processes re-import this script
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--style", default="distorted")
    args = parser.parse_args()
    model = load_model(args.model)
    spec = GenerationSpec(args.style, args.count, 4, 4, seed=5, strength=0.5)
    images = [(text, image) for _, text, image, _ in render_many(spec)]
    model.predict(np.zeros((4, 28, 28, 1), np.float32), verbose=0)
    start = time.perf_counter()
    right = 0
    for text, image in images[:500]:
        crops = segment(image, 4).crops
        guess = model.predict(crops[..., None] / np.float32(255), verbose=0).argmax(1)
        right += "".join(map(str, guess)) == text
    base = 500 / (time.perf_counter() - start)
    print(f"baseline (segment, then predict per CAPTCHA, 500 CAPTCHAs): {base:.0f} CAPTCHAs/s")
    start = time.perf_counter()
    crops = [segment(image, 4).crops for _, image in images]
    print(f"segmentation alone, one process: {args.count / (time.perf_counter() - start):.0f} CAPTCHAs/s")
    reader = Reader(model)
    reader.predict(crops[0])
    start = time.perf_counter()
    reader.predict(np.concatenate(crops))
    print(f"network alone (the ceiling), batches of {reader.batch_size} crops: "
          f"{args.count / (time.perf_counter() - start):.0f} CAPTCHAs/s")
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(spec, Path(tmp) / "ds", workers=2)
        dataset = Source(dataset=read_dataset(Path(tmp) / "ds"))
        for workers in (0, 1, 2):
            result, _ = attack_many(model, {args.style: dataset}, workers=workers)
            print(f"attack --dataset ({args.count} PNGs on disk), workers={workers}: "
                  f"{result['captchas_per_second']:.0f} CAPTCHAs/s, accuracy {result['captcha_accuracy']:.2%}")
    for workers in (1, 2):
        result, _ = attack_many(model, {args.style: Source(spec=spec)}, workers=workers)
        print(f"attack --style (rendering in the workers too), workers={workers}: "
              f"{result['captchas_per_second']:.0f} CAPTCHAs/s")


if __name__ == "__main__":
    main()
