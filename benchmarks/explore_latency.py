"""`explore`'s live view: one full forward pass with every activation, after warm-up, as the
page gets it (an HTTP round trip to a running server, PNG decoding and JSON included) and the
network part alone.

    python benchmarks/explore_latency.py --model models/mnist.keras [--requests 200]
"""

import argparse
import statistics
import time

import cv2
import numpy as np


def main():
    from starlette.testclient import TestClient

    from captchalab.explore.server import Explorer, create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    explorer = Explorer([args.model])
    client = TestClient(create_app(explorer))
    pad = np.full((280, 280), 255, np.uint8)
    cv2.putText(pad, "2", (70, 220), cv2.FONT_HERSHEY_SIMPLEX, 7, 0, 24)
    body = cv2.imencode(".png", pad)[1].tobytes()
    for _ in range(5):
        client.post("/api/char/m0", content=body)  # warm-up: traces the compiled pass
    round_trips, forwards = [], []
    for _ in range(args.requests):
        start = time.perf_counter()
        view = client.post("/api/char/m0", content=body).json()
        round_trips.append(1000 * (time.perf_counter() - start))
        forwards.append(view["forward_ms"])
    q = lambda v, p: statistics.quantiles(v, n=100)[p - 1]
    print(
        f"forward pass with every activation: median {statistics.median(forwards):.1f} ms, 95th percentile {q(forwards, 95):.1f} ms"
    )
    print(
        f"whole request (PNG in, decode, crop, forward, JSON out): median {statistics.median(round_trips):.1f} ms, "
        f"95th percentile {q(round_trips, 95):.1f} ms"
    )


if __name__ == "__main__":
    main()
