"""The 4x4 reader that reads a grid whole (`squares`): one network input per challenge, one
score per square, trained, attacked, perturbed, explored and fine-tuned through the same house
as the tile readers. Its own file, so the test workers can share the grid tests out."""
import json

from conftest import assert_one_line_error, run_cli


def test_a_mirrored_grid_mirrors_its_answer_and_a_tile_keeps_its_own():
    import numpy as np
    from captchalab.attackers.grid import mirrored
    grid = np.zeros((2, 16), np.float32)
    grid[:, [0, 5]] = 1  # squares (0, 0) and (1, 1)
    out = mirrored(grid, np.array([True, False]))
    assert np.flatnonzero(out[0]).tolist() == [3, 6] and np.flatnonzero(out[1]).tolist() == [0, 5]
    tiles = np.array([[1.0], [0.0]], np.float32)
    assert (mirrored(tiles, np.array([True, True])) == tiles).all()


def test_coverage_gives_soft_targets_that_cross_one_half_at_the_answers_threshold():
    import numpy as np
    from captchalab.attackers.grid import coverage_threshold, soft_targets, tile_examples

    def challenge(coverage, answer):
        return {"inputs": np.zeros((1, 8, 8, 3), np.uint8), "grid": 2, "prompt": 0,
                "coverage": np.float32(coverage)}, answer
    # the answers count a square from 5%: the threshold lies between 4% (left out) and 6% (selected)
    examples = [challenge([0.0, 0.04, 0.06, 0.5], "2 3"), challenge([0.02, 0.3, 0.0, 0.0], "1")]
    threshold = coverage_threshold(examples)
    assert 0.04 < threshold < 0.06
    targets = soft_targets(np.float32([0.0, 0.02, 0.04, 0.06, 0.5]), threshold, 3.0)
    assert (np.diff(targets) > 0).all() and targets[0] < 0.01 and targets[-1] > 0.99
    assert targets[2] < 0.5 < targets[3]  # the same side of one half as the answer, nearer it near the line
    soft = tile_examples(examples, threshold, 3.0)[1][2]
    assert ((soft > 0.5) == tile_examples(examples)[1][2].astype(bool)).all()
    # a tie or two from rounding is tolerated; answers coverage does not explain give no threshold
    many = examples + [challenge([0.0, 0.01, 0.0, 0.0], "")] * 30
    assert coverage_threshold(many + [challenge([0.06, 0.0, 0.0, 0.0], "")]) == coverage_threshold(many)
    assert coverage_threshold([challenge([0.3, 0.0, 0.0, 0.0], ""), challenge([0.1, 0.0, 0.0, 0.0], "0")]) is None
    assert coverage_threshold([({**challenge([0.1] * 4, "0")[0], "coverage": None}, "0")]) is None


def test_training_grid4_challenges_carry_their_coverage_and_attacked_ones_do_not():
    import numpy as np
    from captchalab.attack import LABEL_LENGTH, hint_for
    from captchalab.attackers import get_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    reader = get_attacker("squares")(hparams={})
    sample = Source(spec=GenerationSpec("grid4", 1, seed=3)).sample(0)
    trained_on = reader.prepare(sample.image, hint_for(reader, sample, LABEL_LENGTH))
    assert trained_on["coverage"].tolist() == np.float32(sample.details["coverage"]).tolist()
    assert "coverage" not in reader.prepare(sample.image, hint_for(reader, sample, None))


def test_the_squares_reader_reads_the_whole_4x4_scene_and_refuses_other_grids(tmp_path):
    import numpy as np
    import tensorflow as tf
    from captchalab.attackers import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    model = tmp_path / "sq.keras"
    # no --attacker: grid4 names squares as its reader
    trained = run_cli("train", "captcha", "--style", "grid4", "--count", "40", "--epochs", "2", "--workers", "1",
                      "--out", model)
    assert trained.returncode == 0, trained.stderr
    reader = load_attacker(model)
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["attacker"] == "squares" and info["input"]["input"] == [128, 128, 3]
    assert 0.04 < info["soft_targets"]["coverage_threshold"] <= 0.05  # grid4's default coverage, 5%
    samples = [Source(spec=GenerationSpec("grid4", 4, seed=9)).sample(i) for i in range(4)]
    prepared = [reader.prepare(s.image, s.question) for s in samples]
    assert prepared[0]["inputs"].shape == (1, 128, 128, 3)  # one input: the scene, not sixteen crops
    readings = reader.read_prepared(prepared)
    assert all(len(r.details["tile_probabilities"]) == 16 for r in readings)
    # the perturbation's differentiable path sees what reading sees: the same loss within resampling
    x0, _, constants = reader.adversarial_objective([s.image for s in samples], [s.text for s in samples], None,
                                                    questions=[s.question for s in samples])
    through_graph = reader.adversarial_loss(tf.constant(x0), constants).numpy()
    by_reading = []
    for s, q, probabilities in zip(samples, prepared, reader.tile_probabilities(prepared)):
        p = probabilities[:, q["prompt"]].astype(np.float64)
        y = np.isin(np.arange(16), [int(i) for i in s.text.split()])
        by_reading.append(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum())
    assert np.allclose(through_graph, by_reading, rtol=0.05)
    assert_one_line_error(run_cli("attack", "--model", model, "--style", "grid3", "--count", "2", "--out",
                                  tmp_path / "r"), "squares reads 4x4 grids (grid=4); this challenge is 3x3")
    # explore draws the whole scene through every layer, under the likeliest square
    import cv2
    from starlette.testclient import TestClient
    from captchalab.explore.server import Explorer, create_app
    client = TestClient(create_app(Explorer([model])))
    view = client.post(f"/api/captcha/m0?grid=4&prompt={samples[0].question['prompt']}",
                       content=cv2.imencode(".png", samples[0].image)[1].tobytes()).json()
    assert len(view["tiles"]) == 16 and view["tile"]["index"] == int(np.argmax(view["tiles"]))
    assert view["tile"]["layers"]["stem_relu"]["shape"] == [64, 64, 16]
    refused = client.post("/api/captcha/m0?grid=3", content=cv2.imencode(".png", samples[0].image)[1].tobytes())
    assert refused.status_code == 400 and "reads 4x4 grids, not 3x3" in refused.json()["error"]
    # a fine-tune from it takes every layer, its 1x1-convolution output class by class
    tuned = run_cli("train", "captcha", "--style", "grid4", "--count", "40", "--epochs", "1", "--workers", "1",
                    "--from", model, "--out", tmp_path / "tuned.keras")
    assert tuned.returncode == 0, tuned.stderr
    taken = json.loads((tmp_path / "tuned.json").read_text())["initialised_weights"]
    assert "stem_conv" in taken and f"classes for {len(reader.classes)} of {len(reader.classes)} classes" in taken
