"""Training throughput of the network: plain `model.fit` (Adam, batch 128) against the training
step `train mnist` uses (`make_train_step`: a tf.function step on the logits), interleaved on the
same data so that both see the machine in the same state; prints every round and the medians.

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
    ours = build_model(seed=0)
    config = TrainConfig()
    optimizer = make_optimizer(config.learning_rate, config.warmup_epochs, config.epochs, args.images // 128)
    optimizer.build(ours.trainable_variables)
    step = make_train_step(ours, optimizer, config.label_smoothing)
    step(x[:128], y[:128])

    def run_plain():
        plain.fit(x, y, batch_size=128, epochs=1, verbose=0)

    def run_ours():
        for first in range(0, args.images, 128):
            step(x[first:first + 128], y[first:first + 128])

    rates = {"plain": [], "step": []}
    for r in range(args.rounds):
        for name, run in (("plain", run_plain), ("step", run_ours)):
            start = time.perf_counter()
            run()
            rates[name].append(args.images / (time.perf_counter() - start))
        print(f"round {r + 1}: plain model.fit {rates['plain'][-1]:.0f}, training step {rates['step'][-1]:.0f} "
              f"images/s ({rates['step'][-1] / rates['plain'][-1]:.2f}x)", flush=True)
    base, fast = statistics.median(rates["plain"]), statistics.median(rates["step"])
    print(f"median over {args.rounds} interleaved rounds, batch 128: plain model.fit {base:.0f} images/s, "
          f"training step {fast:.0f} images/s ({fast / base:.2f}x)")


if __name__ == "__main__":
    main()
