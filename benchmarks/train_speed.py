"""Training throughput of the network: plain `model.fit` (Adam, batch 128) next to our loop
(custom step with the faster convolution filter gradient), same data, same run.

    python benchmarks/train_speed.py [--images 6000]
"""
import argparse
import time

import numpy as np


def main():
    import keras

    from captchalab.model import build_model
    from captchalab.train import TrainConfig, make_optimizer, make_train_step
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=6000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, args.images).astype(np.int32)

    plain = build_model(seed=0)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    plain.fit(x[:512], y[:512], batch_size=128, epochs=1, verbose=0)  # trace outside the timing
    start = time.perf_counter()
    plain.fit(x, y, batch_size=128, epochs=1, verbose=0)
    base = args.images / (time.perf_counter() - start)
    print(f"plain model.fit, batch 128: {base:.0f} images/s")

    ours = build_model(seed=0)
    config = TrainConfig()
    optimizer = make_optimizer(config, args.images // 128)
    optimizer.build(ours.trainable_variables)
    step = make_train_step(ours, optimizer, config.label_smoothing)
    step(x[:128], y[:128])
    start = time.perf_counter()
    for first in range(0, args.images, 128):
        step(x[first:first + 128], y[first:first + 128])
    fast = args.images / (time.perf_counter() - start)
    print(f"captchalab training step, batch 128: {fast:.0f} images/s ({fast / base:.2f}x)")


if __name__ == "__main__":
    main()
