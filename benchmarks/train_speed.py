"""Training throughput, plain `model.fit` against our compiled training steps, in float32 and (where
the CPU computes it natively, or with --bfloat16) bfloat16 mixed precision, interleaved on the
same data so that all see the machine in the same state; prints every round and the medians.

- `lenet`: the seed's network on 28x28 crops (`make_train_step`, what `train mnist` uses);
- `crnn`: ctc's CRNN on 32x128 CAPTCHAs (`Ctc.train_step`, what `train captcha --attacker ctc`
  uses), plain fit with `keras.losses.CTC` on the same padded labels.

With --onednn, each round runs once with TensorFlow's oneDNN kernels off and once on
(TF_ENABLE_ONEDNN_OPTS=0/1, read when TensorFlow loads, so one process each; captchalab turns
them on where TensorFlow would not, on AVX2-only CPUs).

With --xla, lenet also runs our step compiled by XLA (`jit_compile=True`). CAPTCHALAB_PRECISION=float32
measures float32 alone (with ONEDNN_MAX_CPU_ISA=AVX2, which cannot run bfloat16 convolutions).

    python benchmarks/train_speed.py [--network lenet|crnn|both] [--images 6000] [--rounds 7] [--onednn] [--xla]

It writes results/published/training-speed.json (onednn.json with --onednn; benchmarks/publish.py
says how to publish them).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
from publish import Finding


def lenet_runs(images: int, policies: list[str], xla: bool = False) -> dict:
    import keras
    import tensorflow as tf
    from captchalab.training import cosine_optimizer
    from captchalab.model import TrainConfig, build_model, make_train_step
    from captchalab.runtime import build_with_policy

    rng = np.random.default_rng(0)
    x = rng.random((images, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, images).astype(np.int32)
    plain = build_model(seed=0)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    plain.fit(x[:512], y[:512], batch_size=128, epochs=1, verbose=0)  # trace outside the timing
    config = TrainConfig()
    runs = {"plain model.fit": lambda: plain.fit(x, y, batch_size=128, epochs=1, verbose=0)}
    for policy in policies:
        model = build_with_policy(lambda: build_model(seed=0), policy)
        optimizer = cosine_optimizer(config.learning_rate, config.warmup_epochs, config.epochs, images // 128)
        optimizer.build(model.trainable_variables)
        step = make_train_step(model, optimizer, config.label_smoothing)
        step(x[:128], y[:128])
        runs[f"training step, {policy}"] = lambda step=step: [
            step(x[i : i + 128], y[i : i + 128]) for i in range(0, images, 128)
        ]
        if xla:  # the same step compiled by XLA (jit_compile), on its own copy of the model
            model = build_with_policy(lambda: build_model(seed=0), policy)
            optimizer = cosine_optimizer(config.learning_rate, config.warmup_epochs, config.epochs, images // 128)
            optimizer.build(model.trainable_variables)
            plain_step = make_train_step(model, optimizer, config.label_smoothing)
            compiled = tf.function(
                plain_step.python_function, jit_compile=True, input_signature=plain_step.input_signature
            )
            compiled(x[:128], y[:128])
            runs[f"training step XLA, {policy}"] = lambda step=compiled: [
                step(x[i : i + 128], y[i : i + 128]) for i in range(0, images, 128)
            ]
    return runs


def crnn_runs(images: int, policies: list[str]) -> dict:
    import keras
    from captchalab.attackers.ctc import MAX_LABEL, Ctc
    from captchalab.runtime import build_with_policy

    reader = Ctc()
    h, batch = reader.hparams, reader.hparams["batch_size"]
    rng = np.random.default_rng(0)
    x = rng.random((images, h["height"], h["width"], 1), np.float32)
    labels = np.zeros((images, MAX_LABEL), np.int32)
    labels[:, :4] = rng.integers(1, 11, (images, 4))
    lengths = np.full(images, 4, np.int32)
    plain = reader.build(0)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CTC())
    plain.fit(x[:256], labels[:256], batch_size=batch, epochs=1, verbose=0)
    runs = {"plain model.fit": lambda: plain.fit(x, labels, batch_size=batch, epochs=1, verbose=0)}
    for policy in policies:
        reader.model = build_with_policy(lambda: reader.build(0), policy)
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(reader.model.trainable_variables)
        step = reader.train_step(optimizer)
        step(x[:batch], labels[:batch], lengths[:batch])
        runs[f"training step, {policy}"] = lambda step=step: [
            step(x[i : i + batch], labels[i : i + batch], lengths[i : i + batch]) for i in range(0, images, batch)
        ]
    return runs


def measure(name: str, runs: dict, images: int, rounds: int) -> dict[str, float]:
    """Each run's median rate over interleaved rounds, in images/s."""
    rates = {label: [] for label in runs}
    for r in range(rounds):
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            rates[label].append(images / (time.perf_counter() - start))
        print(
            f"{name} round {r + 1}: " + ", ".join(f"{label} {v[-1]:.0f}" for label, v in rates.items()) + " images/s",
            flush=True,
        )
    base = statistics.median(rates["plain model.fit"])
    print(
        f"{name}, medians over {rounds} interleaved rounds: "
        + ", ".join(
            f"{label} {statistics.median(v):.0f} images/s ({statistics.median(v) / base:.2f}x)"
            for label, v in rates.items()
        ),
        flush=True,
    )
    return {label: statistics.median(v) for label, v in rates.items()}


def compare_onednn(args) -> None:
    """Alternate child processes with oneDNN off and on; medians of their per-round rates."""
    rates: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for setting in ("0", "1"):
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--network",
                    args.network,
                    "--images",
                    str(args.images),
                    "--rounds",
                    "1",
                    "--no-publish",
                ],
                env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting},
                capture_output=True,
                text=True,
                check=True,
            )
            for line in child.stdout.splitlines():
                if "medians" not in line:
                    continue
                name = line.split(",")[0]
                for label, rate in re.findall(r"(plain model\.fit|training step, [\w]+) (\d+) images/s", line):
                    rates.setdefault(f"{name} {label}, oneDNN {'on' if setting == '1' else 'off'}", []).append(
                        float(rate)
                    )
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()), flush=True)
    print(
        f"medians over {args.rounds} alternating rounds (images/s): "
        + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in rates.items()),
        flush=True,
    )
    finding = Finding(
        "onednn",
        "TensorFlow's oneDNN kernels off and on",
        f"Training images/s, medians over "
        f"{args.rounds} alternating rounds of {args.images:,} images, each in its own process.",
        "the work",
        "work",
        ["oneDNN off", "oneDNN on"],
    )
    for key, values in rates.items():
        work, setting = key.rsplit(", oneDNN ", 1)
        finding.add(f"train: {work}", f"oneDNN {setting}", round(statistics.median(values)), "run", unit="images/s")
    finding.run("run")
    print(finding.write())


def main():
    from captchalab.runtime import PRECISION_ENV, bf16_supported

    parser = argparse.ArgumentParser()
    parser.add_argument("--network", choices=["lenet", "crnn", "both"], default="both")
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--bfloat16", action="store_true", help="measure bfloat16 even where the CPU only emulates it (very slow)"
    )
    parser.add_argument("--onednn", action="store_true", help="compare TensorFlow's oneDNN kernels off and on")
    parser.add_argument("--xla", action="store_true", help="lenet: also our step compiled by XLA (jit_compile)")
    parser.add_argument("--no-publish", action="store_true", help="print only (the --onednn children)")
    args = parser.parse_args()
    if args.onednn:
        return compare_onednn(args)
    float32_only = os.environ.get(PRECISION_ENV) == "float32"  # as for training: bfloat16 not wanted
    policies = ["float32"] + (["mixed_bfloat16"] if (bf16_supported() or args.bfloat16) and not float32_only else [])
    if len(policies) == 1:
        print(
            f"{PRECISION_ENV}=float32: float32 only"
            if float32_only
            else "this CPU has no native bfloat16 (AVX512-BF16 or AMX): float32 only",
            flush=True,
        )
    medians = {}
    if args.network in ("lenet", "both"):
        medians["the seed's network, batch 128"] = measure(
            "lenet", lenet_runs(args.images, policies, args.xla), args.images, args.rounds
        )
    if args.network in ("crnn", "both"):
        medians["ctc's CRNN, batch 64, CTC loss"] = measure(
            "crnn", crnn_runs(args.images, policies), args.images, args.rounds
        )
    if not args.no_publish:
        columns = list(dict.fromkeys(label for per in medians.values() for label in per))
        finding = Finding(
            "training-speed",
            "Training throughput: our step against Keras' `fit`",
            f"Training images/s, medians over {args.rounds} interleaved rounds of {args.images:,} "
            "images; each row's numbers from this run.",
            "the network",
            "network",
            columns,
        )
        for network, per in medians.items():
            for label, rate in per.items():
                finding.add(network, label, round(rate), "run", unit="images/s")
        finding.run("run")
        print(finding.write())


if __name__ == "__main__":
    main()
