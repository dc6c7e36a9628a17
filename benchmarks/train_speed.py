"""Training throughput of the network: plain `model.fit` (Adam, batch 128, float32) against the
training step `train mnist` uses (`make_train_step`: a tf.function step on the logits), in
float32 and in bfloat16 mixed precision, interleaved on the same data so that all see the machine
in the same state; prints every round and the medians.

    python benchmarks/train_speed.py [--images 6000] [--rounds 7]
"""
import argparse
import statistics
import time

import numpy as np


def main():
    import keras

    from captchalab.model import build_model
    from captchalab.train import TrainConfig, make_optimizer, make_train_step
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, args.images).astype(np.int32)

    plain = build_model(seed=0)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    plain.fit(x[:512], y[:512], batch_size=128, epochs=1, verbose=0)  # trace outside the timing
    from captchalab.runtime import build_with_policy
    config = TrainConfig()
    steps = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = build_with_policy(lambda: build_model(seed=0), policy)
        optimizer = make_optimizer(config.learning_rate, config.warmup_epochs, config.epochs, args.images // 128)
        optimizer.build(model.trainable_variables)
        steps[policy] = make_train_step(model, optimizer, config.label_smoothing)
        steps[policy](x[:128], y[:128])

    def run_plain():
        plain.fit(x, y, batch_size=128, epochs=1, verbose=0)

    def run_step(policy):
        for first in range(0, args.images, 128):
            steps[policy](x[first:first + 128], y[first:first + 128])

    runs = {"plain model.fit": run_plain, "training step, float32": lambda: run_step("float32"),
            "training step, bfloat16": lambda: run_step("mixed_bfloat16")}
    rates = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            rates[name].append(args.images / (time.perf_counter() - start))
        print(f"round {r + 1}: " + ", ".join(f"{name} {v[-1]:.0f}" for name, v in rates.items()) + " images/s",
              flush=True)
    base = statistics.median(rates["plain model.fit"])
    print(f"medians over {args.rounds} interleaved rounds, batch 128: " + ", ".join(
        f"{name} {statistics.median(v):.0f} images/s ({statistics.median(v) / base:.2f}x)" for name, v in rates.items()))


if __name__ == "__main__":
    main()
