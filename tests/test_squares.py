"""The 4x4 reader that reads a grid whole (`squares`): one network input per challenge, one
score per square, trained, attacked, perturbed, explored and fine-tuned through the same house
as the tile readers. Its own file, so the test workers can share the grid tests out."""

import json

from conftest import assert_one_line_error, run_cli


def test_a_mirrored_grid_mirrors_its_answer_and_a_tile_keeps_its_own():
    import numpy as np
    from captchalab.attackers.tile_inputs import mirrored

    grid = np.zeros((2, 16), np.float32)
    grid[:, [0, 5]] = 1  # squares (0, 0) and (1, 1)
    out = mirrored(grid, np.array([True, False]))
    assert np.flatnonzero(out[0]).tolist() == [3, 6] and np.flatnonzero(out[1]).tolist() == [0, 5]
    tiles = np.array([[1.0], [0.0]], np.float32)
    assert (mirrored(tiles, np.array([True, True])) == tiles).all()


def test_the_coverage_threshold_is_read_off_the_training_answers():
    import numpy as np
    from captchalab.attackers.tile_inputs import coverage_threshold

    def challenge(coverage, answer):
        return {"coverage": np.float32(coverage)}, answer

    # the answers count a square from 5%: the threshold lies between 4% (left out) and 6% (selected)
    examples = [challenge([0.0, 0.04, 0.06, 0.5], "2 3"), challenge([0.02, 0.3, 0.0, 0.0], "1")]
    assert 0.04 < coverage_threshold(examples) < 0.06
    # a tie or two from rounding is tolerated; answers coverage does not explain give no threshold
    many = examples + [challenge([0.0, 0.01, 0.0, 0.0], "")] * 30
    assert coverage_threshold(many + [challenge([0.06, 0.0, 0.0, 0.0], "")]) == coverage_threshold(many)
    assert coverage_threshold([challenge([0.3, 0.0, 0.0, 0.0], ""), challenge([0.1, 0.0, 0.0, 0.0], "0")]) is None
    assert coverage_threshold([({"coverage": None}, "0")]) is None


def test_training_grid4_challenges_carry_their_coverage_maps_and_attacked_ones_do_not():
    import numpy as np
    from captchalab.attack import LABEL_LENGTH, hint_for
    from captchalab.attackers import get_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    reader = get_attacker("areas")(hparams={})
    sample = Source(spec=GenerationSpec("grid4", 1, seed=3)).sample(0)
    trained_on = reader.prepare(sample.image, hint_for(reader, sample, LABEL_LENGTH))
    assert trained_on["coverage"].tolist() == np.float32(sample.details["coverage"]).tolist()
    assert trained_on["coverage_map"].shape == (256,)  # four cells to a square's side
    # each square's share is the mean of its cells (to the map's rounding)
    squares = trained_on["coverage_map"].reshape(4, 4, 4, 4).mean(axis=(1, 3)).ravel()
    assert np.allclose(squares, trained_on["coverage"], atol=1e-3)
    attacked = reader.prepare(sample.image, hint_for(reader, sample, None))
    assert "coverage" not in attacked and "coverage_map" not in attacked


def test_the_squares_reader_reads_the_whole_4x4_scene_and_refuses_other_grids(tmp_path):
    import numpy as np
    import tensorflow as tf
    from captchalab.attackers import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    model = tmp_path / "sq.keras"
    trained = run_cli(
        "train",
        "captcha",
        "--style",
        "grid4",
        "--attacker",
        "squares",
        "--count",
        "40",
        "--epochs",
        "2",
        "--workers",
        "1",
        "--out",
        model,
    )
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
    x0, _, constants = reader.adversarial_objective(
        [s.image for s in samples], [s.text for s in samples], None, questions=[s.question for s in samples]
    )
    through_graph = reader.adversarial_loss(tf.constant(x0), constants).numpy()
    by_reading = []
    for s, q, probabilities in zip(samples, prepared, reader.tile_probabilities(prepared)):
        p = probabilities[:, q["prompt"]].astype(np.float64)
        y = np.isin(np.arange(16), [int(i) for i in s.text.split()])
        by_reading.append(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum())
    assert np.allclose(through_graph, by_reading, rtol=0.05)
    assert_one_line_error(
        run_cli("attack", "--model", model, "--style", "grid3", "--count", "2", "--out", tmp_path / "r"),
        "squares reads 4x4 grids (grid=4); this challenge is 3x3",
    )
    # explore draws the whole scene through every layer, under the likeliest square
    import cv2
    from starlette.testclient import TestClient
    from captchalab.explore.server import Explorer, create_app

    client = TestClient(create_app(Explorer([model])))
    view = client.post(
        f"/api/captcha/m0?grid=4&prompt={samples[0].question['prompt']}",
        content=cv2.imencode(".png", samples[0].image)[1].tobytes(),
    ).json()
    assert len(view["tiles"]) == 16 and view["tile"]["index"] == int(np.argmax(view["tiles"]))
    assert view["tile"]["layers"]["stem_relu"]["shape"] == [64, 64, 16]
    refused = client.post("/api/captcha/m0?grid=3", content=cv2.imencode(".png", samples[0].image)[1].tobytes())
    assert refused.status_code == 400 and "reads 4x4 grids, not 3x3" in refused.json()["error"]
    # a fine-tune from it takes every layer, its 1x1-convolution output class by class
    tuned = run_cli(
        "train",
        "captcha",
        "--style",
        "grid4",
        "--attacker",
        "squares",
        "--count",
        "40",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--from",
        model,
        "--out",
        tmp_path / "tuned.keras",
    )
    assert tuned.returncode == 0, tuned.stderr
    taken = json.loads((tmp_path / "tuned.json").read_text())["initialised_weights"]
    assert "stem_conv" in taken and f"classes for {len(reader.classes)} of {len(reader.classes)} classes" in taken


def test_the_areas_reader_selects_the_squares_its_coverage_map_puts_over_the_threshold():
    import numpy as np
    import tensorflow as tf
    from captchalab.attackers import get_attacker

    reader = get_attacker("areas")(hparams={}, info={"coverage_threshold": 0.05})
    reader.classes = ["cat", "dog"]
    # a 16x16 map of cells: the cat covers square 0 wholly, square 1 by 4/16 cells at 25% (6.25%),
    # square 2 by one cell at 50% (3.1%): squares 0 and 1 count, 2 does not; the dog nothing
    cells = np.full((1, 16, 16, 2), -20.0, np.float32)
    cells[0, :4, :4, 0] = 20.0
    cells[0, :4, 4, 0] = np.log(0.25 / 0.75)
    cells[0, 0, 8, 0] = 0.0
    logits = reader.square_logits(tf.constant(cells)).numpy()[0]
    assert logits.shape == (16, 2)
    assert np.flatnonzero(logits[:, 0] >= 0).tolist() == [0, 1] and (logits[:, 1] < 0).all()
    # training: a cell's loss is least where its estimate is the recorded share; squares on the
    # right side of the threshold count as read right
    target = np.zeros((1, 256), np.float32)
    target.reshape(16, 16)[:4, :4] = 1.0
    target.reshape(16, 16)[:4, 4] = 0.25
    target.reshape(16, 16)[0, 8] = 0.5
    loss, right = reader.training_loss(tf.constant(cells), tf.constant([0]), tf.constant(target))
    assert float(right[0]) == 1.0 and float(loss) < 0.05
    loss_off, right_off = reader.training_loss(tf.constant(cells), tf.constant([1]), tf.constant(target))
    assert float(right_off[0]) == 14 / 16 and float(loss_off) > float(loss)

    # reading selects where the estimate reaches the threshold, even where every training answer
    # had three squares (the size prior would add square 2, the likeliest of the rest)
    reader.info["answer_sizes"] = [0, 0, 0, 1000] + [0] * 13
    reader.input_logits = lambda x: logits
    prepared = [{"inputs": np.zeros((1, 128, 128, 3), np.uint8), "grid": 4, "prompt": 0}]
    assert reader.read_prepared(prepared)[0].text == "0 1"
    sized = get_attacker("areas")(hparams={"sizes": True}, info=reader.info)
    sized.classes, sized.input_logits = reader.classes, reader.input_logits
    assert sized.read_prepared(prepared)[0].text == "0 1 2"


def test_areas_trains_on_generated_grid4_coverage_maps_and_refuses_answers_alone(tmp_path):
    model = tmp_path / "areas.keras"
    # no --attacker: grid4 names areas as its reader
    trained = run_cli(
        "train", "captcha", "--style", "grid4", "--count", "40", "--epochs", "2", "--workers", "1", "--out", model
    )
    assert trained.returncode == 0, trained.stderr
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["attacker"] == "areas" and 0.04 < info["coverage_threshold"] <= 0.05
    attacked = run_cli("attack", "--model", model, "--style", "grid4", "--count", "8", "--out", tmp_path / "r")
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [r["char_accuracy"] is not None for r in report["per_attacker"].values()] == [True]
    assert report["char_accuracy_definition"].startswith("tile accuracy")  # per square here, not edit distance
    # explore shows the map through every layer, down to one cell a square and up again
    import cv2
    from starlette.testclient import TestClient
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.explore.server import Explorer, create_app

    sample = Source(spec=GenerationSpec("grid4", 1, seed=9)).sample(0)
    view = (
        TestClient(create_app(Explorer([model])))
        .post(
            f"/api/captcha/m0?grid=4&prompt={sample.question['prompt']}",
            content=cv2.imencode(".png", sample.image)[1].tobytes(),
        )
        .json()
    )
    assert len(view["tiles"]) == 16 and view["tile"]["layers"]["up2_relu"]["shape"] == [16, 16, 64]
    # a labelled grid4 dataset without its challenges.json holds answers only: nothing to learn from
    data = tmp_path / "d"
    assert run_cli("generate", "--style", "grid4", "--count", "12", "--out", data).returncode == 0
    (data / "challenges.json").unlink()
    assert_one_line_error(
        run_cli(
            "train", "captcha", "--dataset", data, "--attacker", "areas", "--epochs", "1", "--out", tmp_path / "x.keras"
        ),
        "areas learns from the coverage map",
    )
    assert not (tmp_path / "x.keras").exists()
