"""Attackers as a plugin family: the interface, the built-ins, saving and loading, several
attackers in one report, and bad input."""

import json
import re

import numpy as np
import pytest

from captchalab.attack import attack_many
from captchalab.attackers import TrainSettings, get_attacker, load_attacker
from captchalab.attackers.ctc import greedy_decode, ctc_input
from captchalab.attackers.ctc_inputs import linear_percentiles
from captchalab.data.dataset import GenerationSpec, Source, generate_dataset
from captchalab.errors import CaptchalabError
from captchalab.train import train_attacker
from conftest import REPO, assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def ctc_model(tmp_path_factory):
    """A ctc attacker trained for two short epochs on 120 clean CAPTCHAs of 3 to 5 digits."""
    out = tmp_path_factory.mktemp("ctc") / "ctc.keras"
    source = Source(spec=GenerationSpec("clean", 120, 3, 5, seed=3, strength=0.0))
    attacker = get_attacker("ctc")("0123456789", {"filters": 8, "rnn_units": 16})
    info = train_attacker(attacker, source, out, TrainSettings(epochs=2, batch_size=16, seed=3), workers=0)
    assert info["attacker"] == "ctc" and info["epochs_run"] == 2
    return out


def test_greedy_decode_merges_repeats_only_across_blanks():
    charset = "0123456789"
    # time steps for "1001": 1 1 blank 0 0 blank 0 1 blank; the doubled 0 needs the blank between
    path = [2, 2, 0, 1, 1, 0, 1, 2, 0]
    probs = np.full((1, len(path), 11), 0.01, np.float32)
    for t, k in enumerate(path):
        probs[0, t, k] = 0.9
    ((text, confidence),) = greedy_decode(probs, charset)
    assert text == "1001" and len(confidence) == 4
    import keras

    decoded, _ = keras.ops.ctc_decode(np.log(probs), np.array([len(path)]), strategy="greedy", mask_index=0)
    assert "".join(charset[k - 1] for k in np.asarray(decoded)[0, 0] if k > 0) == "1001"


def test_normalise_gives_dark_ink_on_light_whatever_the_input():
    light = np.full((60, 200, 3), 240, np.uint8)
    light[20:40, 30:50] = 20
    dark = 255 - light
    for image in (light, dark, light[..., 0]):
        out = ctc_input(image, 32, 128)
        assert out.shape == (32, 128) and out.dtype == np.uint8
        assert np.median(out) > 200 and out.min() < 60
    wide = ctc_input(np.full((20, 1000), 255, np.uint8), 32, 128)
    assert wide.shape == (32, 128)  # squeezed, not cut


def test_normalise_counts_from_the_histogram_what_numpy_would_sort_for():
    """ctc_input's levels come from histograms; every byte equals the sorting version's (np.percentile
    and np.median on the pixels), so a reader trained before reads the same inputs."""

    def by_sorting(image, height, width, colour=False):
        import cv2

        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        picture = (image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)) if colour else grey
        lo, hi = np.percentile(grey, (1, 99))
        if hi - lo > 8:
            grey, picture = (
                np.clip((a.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
                for a in (grey, picture)
            )
        if np.median(grey) < 128:
            picture = 255 - picture
        h, w = grey.shape
        new_w = max(1, min(width, round(w * height / h)))
        inter = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
        resized = cv2.resize(picture, (new_w, height), interpolation=inter)
        background = np.median(resized.reshape(height * new_w, -1), axis=0).astype(int)
        out = np.empty((height, width) + resized.shape[2:], np.uint8)
        out[:] = background if colour else background[0]
        out[:, :new_w] = resized
        return out

    rng = np.random.default_rng(11)
    for case in range(400):
        most = (6, 6) if case % 2 else (90, 300)  # tiny images: neighbours apart at the percentiles
        h, w = int(rng.integers(1, most[0])), int(rng.integers(1, most[1]))
        shape = (h, w) if case % 3 == 0 else (h, w, 3)
        low, span = int(rng.integers(0, 256)), int(rng.integers(0, 40 if case % 4 == 0 else 256))
        image = np.clip(low + rng.integers(0, span + 1, shape), 0, 255).astype(np.uint8)
        if case % 5 == 0:  # a few levels only: ties at the percentiles and the median
            image = (image // 64 * 64).astype(np.uint8)
        grey = image if image.ndim == 2 else image[..., case % 3]
        counted = linear_percentiles(np.cumsum(np.bincount(grey.ravel(), minlength=256)), (1, 50, 99))
        assert np.array_equal(counted, np.percentile(grey, (1, 50, 99))), (case, shape)
        for colour in (False, True):
            expected = by_sorting(image, 32, 128, colour)
            assert np.array_equal(ctc_input(image, 32, 128, colour), expected), (case, shape, colour)


def test_colour_normalise_keeps_apart_what_grey_makes_one():
    # a dark red line across dark blue ink of the same grey: one grey, two colours
    image = np.full((40, 120, 3), 235, np.uint8)
    image[10:30, 20:40] = (160, 40, 20)  # BGR: blue ink, grey 48
    image[18:22, :] = (10, 30, 97)  # a red line of the same grey
    ink, line = (20, 24), (15, 60)  # the ink's and the line's pixels after normalising to 32 high
    grey = ctc_input(image, 32, 128)
    colour = ctc_input(image, 32, 128, colour=True)
    assert colour.shape == (32, 128, 3) and colour.dtype == np.uint8
    assert abs(int(grey[ink]) - int(grey[line])) <= 3
    assert np.abs(colour[ink].astype(int) - colour[line].astype(int)).max() > 100
    # the same stretch, inversion and padding as grey, decided on its grey: the background and the
    # padding are the grey reader's (the ink differs where a channel clips)
    difference = np.abs(cv2_grey(colour).astype(int) - grey.astype(int))
    assert (difference[grey > 200] <= 1).all() and (difference[:, 96:] == 0).all()
    inverted = ctc_input(255 - image, 32, 128, colour=True)
    assert np.median(cv2_grey(inverted)) > 200


def cv2_grey(image):
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def test_a_colour_ctc_starts_from_a_grey_model_reading_as_it_did(ctc_model):
    import tensorflow as tf

    grey = load_attacker(ctc_model)
    colour = get_attacker("ctc")("0123456789", {**grey.hparams, "colour": True})
    colour.model = colour.build(0)
    assert colour.model.input_shape[1:] == (32, 128, 3)
    assert "conv1 from grey" in colour.init_from(grey)
    wider = get_attacker("ctc")("0123456789", {**grey.hparams, "colour": True, "filters": 16})
    wider.model = wider.build(0)
    assert "conv1" not in wider.init_from(grey)  # another shape: it learns its own
    samples = [Source(spec=GenerationSpec("noisy", 6, 3, 5, seed=9)).sample(i) for i in range(6)]
    by_grey = grey.probabilities([grey.prepare(s.image, None) for s in samples])
    by_colour = colour.probabilities([colour.prepare(s.image, None) for s in samples])
    assert np.abs(by_grey - by_colour).max() < 0.05
    # its differentiable copy of ctc_input reads what reading reads: the CTC loss of the truth
    x0, _, constants = colour.adversarial_objective([s.image for s in samples], [s.text for s in samples], None)
    through_graph = colour.adversarial_loss(tf.constant(x0), constants).numpy()
    import keras

    logits = np.log(np.clip(by_colour, 1e-9, 1))
    encoded = np.zeros((6, 8), np.int32)
    for k, s in enumerate(samples):
        encoded[k, : len(s.text)] = [int(c) + 1 for c in s.text]
    by_reading = keras.ops.ctc_loss(
        encoded, logits, np.array([len(s.text) for s in samples]), np.full(6, 32), mask_index=0
    )
    assert np.allclose(through_graph, np.asarray(by_reading), rtol=0.05, atol=0.05)


def test_ctc_reads_variable_lengths_and_round_trips(ctc_model, tmp_path):
    attacker = load_attacker(ctc_model)
    info = json.loads(ctc_model.with_suffix(".json").read_text())
    assert info["charset"] == "0123456789" and info["input"] == {
        "height": 32,
        "width": 128,
        "channels": 1,
        "time_steps": 32,
    }
    images = [s.image for s in (Source(spec=GenerationSpec("clean", 6, 3, 5, seed=9)).sample(i) for i in range(6))]
    first = attacker.read(images)
    again = load_attacker(ctc_model).read(images)
    assert [r.text for r in first] == [r.text for r in again]
    assert all(len(r.confidence) == len(r.text) for r in first)


def test_segment_round_trip_and_charset_sized_output(tiny_model_path, tmp_path):
    attacker = load_attacker(tiny_model_path)
    assert attacker.name == "segment" and attacker.charset == "0123456789"
    letters = get_attacker("segment")("abc")
    letters.model = letters.build(0)
    taken = letters.init_from(attacker)
    assert "fc2 for 0 of 3 characters" in taken
    np.testing.assert_array_equal(
        letters.model.get_layer("conv3").get_weights()[0], attacker.model.get_layer("conv3").get_weights()[0]
    )


def test_the_guide_example_is_a_working_plugin(tmp_path, ctc_model):
    text = (REPO / "docs" / "attackers.md").read_text()
    code = re.search(r"```python\n(# multihead.py\n.*?)```", text, re.S).group(1)
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "multihead.py").write_text(code)
    listed = run_cli("attackers", "--plugins", folder)
    assert "multihead: A CNN with one softmax per character position" in listed.stdout
    assert "length (int, default 4" in listed.stdout and "--attacker multihead:length=4" in listed.stdout
    model = tmp_path / "mh.keras"
    trained = run_cli(
        "train",
        "captcha",
        "--attacker",
        "multihead",
        "--plugins",
        folder,
        "--style",
        "clean",
        "--count",
        "60",
        "--from",
        "scratch",
        "--epochs",
        "2",
        "--workers",
        "0",
        "--out",
        model,
    )
    assert trained.returncode == 0, trained.stderr
    assert json.loads(model.with_suffix(".json").read_text())["attacker"] == "multihead"
    out = tmp_path / "r"
    both = run_cli(
        "attack",
        "--model",
        model,
        "--model",
        ctc_model,
        "--plugins",
        folder,
        "--style",
        "clean",
        "--count",
        "20",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert both.returncode == 0, both.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["per_attacker"]) == {"mh (multihead)", "ctc (ctc)"}
    for r in report["per_attacker"].values():
        assert r["count"] == 20 and 0 <= r["char_accuracy"] <= 1 and r["captchas_per_second"] > 0
    page = (out / "report.html").read_text()
    assert "mh (multihead)" in page and "edit distance" in page
    # without the plugin folder the model names what is missing
    missing = run_cli("attack", "--model", model, "--style", "clean", "--count", "5", "--out", tmp_path / "x")
    assert_one_line_error(missing, "made by attacker 'multihead', which is not installed")


def test_multi_attacker_report_shows_what_segment_saw(tmp_path, tiny_model_path, ctc_model):
    sources = {"clean": Source(spec=GenerationSpec("clean", 30, seed=11))}
    report, examples = attack_many([load_attacker(tiny_model_path), load_attacker(ctc_model)], sources, workers=0)
    assert report["attackers"] == ["tiny (segment)", "ctc (ctc)"]
    segment, ctc = report["per_attacker"]["tiny (segment)"], report["per_attacker"]["ctc (ctc)"]
    assert "segmentation_box_rate" in segment and "segmentation_box_rate" not in ctc
    assert report["captcha_accuracy"] == segment["captcha_accuracy"]  # the first attacker on top
    misread = examples["tiny (segment)"]
    assert misread and misread[0][1].reading.crops.shape[1:] == (28, 28)
    from captchalab.report import write_attack_report

    write_attack_report(tmp_path / "r", report, examples)
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert "misread-tiny-segment.png" in names and "confusion-ctc-ctc.png" in names


def test_ddddocr_reads_and_filters_to_the_charset(tmp_path):
    pytest.importorskip("ddddocr")
    reader = get_attacker("ddddocr")("0123456789")
    images = [Source(spec=GenerationSpec("clean", 4, seed=1, strength=0.0)).sample(i) for i in range(4)]
    readings = reader.read([s.image for s in images])
    assert all(set(r.text) <= set("0123456789") for r in readings)
    assert sum(r.text == s.text for r, s in zip(readings, images)) >= 3  # clean digits are easy for it


def test_ddddocr_missing_is_one_line(tmp_path, monkeypatch):
    import captchalab.attackers.ddddocr as module

    monkeypatch.setattr(module, "available", lambda: False)
    for name in ("ddddocr", "ddddocr-slide"):
        with pytest.raises(CaptchalabError, match=r"pip install 'captchalab\[ddddocr\]'"):
            get_attacker(name)("0123456789")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--attacker", "nope"], "unknown attacker 'nope'"),
        (["--attacker", "ctc"], "must be trained first"),
        ([], "at least one --model or --attacker"),
    ],
)
def test_attack_errors(tmp_path, args, fragment):
    result = run_cli("attack", *args, "--style", "clean", "--count", "3", "--out", tmp_path / "r")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "r").exists()


def test_charset_mismatches(tmp_path, tiny_model_path):
    # a generator drawing letters cannot be read by a digits model
    result = run_cli(
        "attack",
        "--model",
        tiny_model_path,
        "--style",
        "clean",
        "--charset",
        "abc",
        "--count",
        "3",
        "--out",
        tmp_path / "r",
    )
    assert_one_line_error(result, "cannot express 'abc'")
    # a dataset's rows with letters are rejected and listed, the rest are read
    folder = tmp_path / "ds"
    generate_dataset(GenerationSpec("clean", 4, charset="0123456789", seed=1), folder)
    with (folder / "labels.csv").open("a") as f:
        f.write("00000.png,12ab\n")
    out = tmp_path / "r2"
    result = run_cli("attack", "--model", tiny_model_path, "--dataset", folder, "--workers", "0", "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["count"] == 4 and report["rejected_rows"] == [["00000.png", "characters 'ab' outside the charset"]]


def test_broken_attacker_plugin_is_listed_and_the_rest_work(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "broken.py").write_text(
        "from captchalab.attackers import Attacker, register_attacker\n"
        "@register_attacker\nclass Bad(Attacker):\n    name = 'bad'\n"
        "    description = 'no read_prepared'\n"
    )
    (folder / "loose.py").write_text(
        "from captchalab.attackers import Attacker, register_attacker\n"
        "@register_attacker\nclass Loose(Attacker):\n    name = 'loose'\n"
        "    description = 'params as a list of names'\n    params = ['rate']\n"
    )
    listed = run_cli("attackers", "--plugins", folder)
    assert listed.returncode == 0
    broken = [line for line in listed.stdout.splitlines() if line.startswith("broken plugin (skipped):")]
    assert any("broken.py" in line and "does not define read_prepared" in line for line in broken), listed.stdout
    assert any("loose.py" in line and "params must be a tuple of Param" in line for line in broken), listed.stdout
    for name in ("segment", "ctc", "ddddocr"):
        assert f"{name}:" in listed.stdout


def test_train_errors_leave_nothing(tmp_path):
    out = tmp_path / "m.keras"
    for args, fragment in (
        (["--attacker", "ddddocr"], "cannot be trained"),
        (["--attacker", "ctc", "--hparam", "wobble=1"], "no hyper-parameter 'wobble'"),
        (["--attacker", "ctc", "--hparam", "height=20"], "multiple of 8"),
    ):
        result = run_cli(
            "train", "captcha", "--style", "clean", "--count", "10", "--from", "scratch", *args, "--out", out
        )
        assert_one_line_error(result, fragment)
        assert not out.exists() and not list(tmp_path.iterdir())
