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
