"""Training throughput of the network: plain `model.fit` (Adam, batch 128) against the custom
training step (`make_train_step`), interleaved on the same data so that both see the machine in
the same state; prints every run and the median of each.

    python benchmarks/train_speed.py [--images 6000] [--rounds 5]
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
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, args.images).astype(np.int32)

    plain = build_model(seed=0)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    plain.fit(x[:512], y[:512], batch_size=128, epochs=1, verbose=0)  # trace outside the timing
    ours = build_model(seed=0)
    config = TrainConfig()
    optimizer = make_optimizer(config, args.images // 128)
    optimizer.build(ours.trainable_variables)
    step = make_train_step(ours, optimizer, config.label_smoothing)
    step(x[:128], y[:128])

    def run_plain():
        plain.fit(x, y, batch_size=128, epochs=1, verbose=0)

    def run_ours():
        for first in range(0, args.images, 128):
            step(x[first:first + 128], y[first:first + 128])

    rates = {"plain model.fit": [], "custom step": []}
    for r in range(args.rounds):
        for name, run in (("plain model.fit", run_plain), ("custom step", run_ours)):
            start = time.perf_counter()
            run()
            rates[name].append(args.images / (time.perf_counter() - start))
        print(f"round {r + 1}: plain {rates['plain model.fit'][-1]:.0f}, custom {rates['custom step'][-1]:.0f} "
              f"images/s ({rates['custom step'][-1] / rates['plain model.fit'][-1]:.2f}x)", flush=True)
    base, fast = (statistics.median(rates[k]) for k in ("plain model.fit", "custom step"))
    print(f"median over {args.rounds} interleaved rounds, batch 128: plain model.fit {base:.0f} images/s, "
          f"custom step {fast:.0f} images/s ({fast / base:.2f}x)")


if __name__ == "__main__":
    main()
