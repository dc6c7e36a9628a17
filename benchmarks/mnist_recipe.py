"""The default `train mnist` recipe over three seeds: test accuracy on the official 10k test set
and wall time of each run (the whole command: loading, training, evaluation), their mean and
spread.

    python benchmarks/mnist_recipe.py --data ../shared/data/mnist [--seeds 0,1,2] [--epochs 7]

It writes results/published/mnist-recipe.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import json
from pathlib import Path

from publish import Finding


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", default="7", help="a shorter or longer recipe than the default's 7")
    parser.add_argument("--keep", help="folder to keep the models in (mnist-<seed>.keras)")
    args = parser.parse_args()
    accuracies, walls = [], []
    finding = Finding(
        "mnist-recipe",
        "`train mnist`: the seed's network on MNIST, and what its recipe costs where",
        f"The seed's network trained by `captchalab train mnist --epochs {args.epochs}`, tested on the "
        "official 10,000; the wall time is the whole command's.",
        "the recipe and the seed",
        "run",
        ["test accuracy", "wall time", "training images/s"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds.split(","):
            out = Path(args.keep or tmp) / f"mnist-{seed}.keras"
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "captchalab",
                    "train",
                    "mnist",
                    "--data",
                    args.data,
                    "--seed",
                    seed,
                    "--epochs",
                    args.epochs,
                    "--out",
                    str(out),
                ],
                check=True,
                capture_output=True,
            )
            wall = time.perf_counter() - start
            info = json.loads(out.with_suffix(".json").read_text())
            accuracies.append(info["test_accuracy"])
            walls.append(wall)
            print(
                f"seed {seed}: test accuracy {info['test_accuracy']:.2%}, {wall:.0f} s wall "
                f"({info['train_images_per_second']:.0f} training images/s, best epoch {info['best_epoch']})",
                flush=True,
            )
            row = f"{args.epochs} epochs, seed {seed}"
            finding.add(row, "test accuracy", info["test_accuracy"], "run", verdict="no attacker", digits=2)
            finding.add(row, "wall time", round(wall), "run", unit="s")
            finding.add(row, "training images/s", round(info["train_images_per_second"]), "run", unit="images/s")
    finding.run("run", sum(walls))
    print(finding.write())
    print(
        f"mean {statistics.mean(accuracies):.2%}, spread {min(accuracies):.2%}-{max(accuracies):.2%}; "
        f"wall {min(walls):.0f}-{max(walls):.0f} s"
    )


if __name__ == "__main__":
    main()
