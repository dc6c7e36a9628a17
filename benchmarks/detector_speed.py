"""The `detector` attacker's throughput on 3x3 grids of real photographs (scikit-image's sample
pictures, as tests/test_detector.py builds them), beside its network's ceiling: the bare network
on the same tiles, decoded, framed and normalised beforehand, one tile at a time as the attacker
feeds it, in the same process and threads.

    python benchmarks/detector_speed.py [--count 60]

It writes results/published/detector-speed.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import tempfile
import time
from pathlib import Path


from captchalab.attack import attack_many
from captchalab.attackers import make_attacker
from captchalab.data.dataset import GenerationSpec, Source
from captchalab.testing import sample_photo_folder
from publish import Finding


def main():
    from captchalab.detector.nanodet import framed, network_input

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tiles = sample_photo_folder(Path(tmp) / "photos")
        spec = GenerationSpec(
            "grid3", args.count, seed=5, strength=0.0, params={"tiles": str(tiles), "prompt": "motorcycle"}
        )
        source = Source(spec=spec)
        detector = make_attacker("detector")
        result, _ = attack_many([detector], {"grid3": source}, workers=0)  # warm-up: loads the network
        start = time.perf_counter()
        result, _ = attack_many([detector], {"grid3": source}, workers=0)
        attack = args.count / (time.perf_counter() - start)
        images = [source.sample(i) for i in range(args.count)]
        margin = detector.hparams["margin"]
        inputs = [
            network_input(framed(t, margin)) for s in images for t in detector.prepare(s.image, s.question)["tiles"]
        ]
        net = detector._detector()
        start = time.perf_counter()
        for x in inputs:
            net._run(x)
        ceiling = len(inputs) / 9 / (time.perf_counter() - start)
    print(f"detector, attack: {attack:.1f} challenges/s ({result['captcha_accuracy']:.1%} solved)")
    print(f"the bare network, pre-decoded inputs, one tile at a time: {ceiling:.1f} challenges/s")
    finding = Finding(
        "detector-speed",
        "The detector's throughput on 3x3 grids of photographs",
        f"{args.count} `grid3` challenges at strength 0 built from scikit-image's sample photographs, "
        "prompt motorcycle; one process, the same threads for both.",
        "the work",
        "work",
        ["speed", "solved"],
    )
    finding.add(
        "`attack --attacker detector` (decoding, cutting, framing, reading)",
        "speed",
        round(attack, 1),
        "run",
        unit="challenges/s",
    )
    finding.add(
        "the bare network on the same tiles, pre-decoded and framed",
        "speed",
        round(ceiling, 1),
        "run",
        unit="challenges/s",
    )
    finding.add_attack("`attack --attacker detector` (decoding, cutting, framing, reading)", "solved", result, "run")
    finding.run("run")
    print(finding.write())


if __name__ == "__main__":
    main()
