"""`explore`'s live view: one full forward pass with every activation, after warm-up, as the
page gets it (an HTTP round trip to a running server, PNG decoding and JSON included) and the
network part alone.

    python benchmarks/explore_latency.py --model models/mnist.keras [--requests 200]

It writes results/published/explore-latency.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import statistics
import time

import cv2
import numpy as np
from publish import Finding


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
    finding = Finding(
        "explore-latency",
        "`explore`: how fast the live view answers",
        f"{args.requests} requests after warm-up, each a drawn digit through the seed's network.",
        "the work",
        "work",
        ["median", "95th percentile"],
    )
    for row, values in (
        ("one forward pass with every activation", forwards),
        ("the whole HTTP request (PNG in, decode, crop, forward, JSON out)", round_trips),
    ):
        finding.add(row, "median", round(statistics.median(values), 1), "run", unit="ms")
        finding.add(row, "95th percentile", round(q(values, 95), 1), "run", unit="ms")
    finding.run("run")
    print(finding.write())


if __name__ == "__main__":
    main()
