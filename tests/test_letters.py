"""Any character set, from generator to network to report."""

import json

import numpy as np
import pytest

from captchalab.attack import attack_many
from captchalab.attackers import load_attacker
from captchalab.charset import AMBIGUOUS, NAMED, parse_charset
from captchalab.generation.chars import render_chars
from captchalab.data.dataset import GenerationSpec, Source, generate_dataset, render_many
from captchalab.errors import CaptchalabError
from captchalab.score import edit_distance, score
from conftest import run_cli


@pytest.mark.parametrize("name", list(NAMED))
def test_every_named_charset_draws_only_its_characters(tmp_path, name):
    spec = GenerationSpec("distorted", 30, 5, 6, charset=NAMED[name], seed=4, strength=0.6)
    generate_dataset(spec, tmp_path / "a")
    generate_dataset(spec, tmp_path / "b", workers=2)
    labels = (tmp_path / "a" / "labels.csv").read_text()
    assert labels == (tmp_path / "b" / "labels.csv").read_text()
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == {
        p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()
    }
    texts = [line.split(",")[1] for line in labels.splitlines()[1:]]
    assert all(set(t) <= set(NAMED[name]) and 5 <= len(t) <= 6 for t in texts)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["charset_name"] == name


def test_a_style_can_leave_out_ambiguous_characters():
    spec = GenerationSpec("clean", 200, 6, 6, charset=NAMED["alnum"], seed=1, params={"avoid_ambiguous": True})
    used = set("".join(drawn.label for _, drawn in render_many(spec)))
    assert used and not used & AMBIGUOUS
    assert len(used) > 15


def test_handwritten_says_it_draws_digits_only(monkeypatch, mnist_dir):
    monkeypatch.setenv("CAPTCHALAB_MNIST", str(mnist_dir))
    with pytest.raises(CaptchalabError, match="cannot draw 'ab' \\(it draws digits only\\)"):
        GenerationSpec("handwritten", 3, charset="01ab").check()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("abca", "repeats 'a'"),
        ("digitz", "did you mean 'digits'"),
        ("a b", "cannot be CAPTCHA characters"),
        ("Alnum", "unknown charset name"),
    ],
)
def test_bad_charsets(text, fragment):
    with pytest.raises(CaptchalabError, match=fragment):
        parse_charset(text)


def test_explicit_charsets_keep_their_order():
    assert parse_charset("0123456789abcdef") == "0123456789abcdef"
    assert parse_charset("ALNUM") == NAMED["ALNUM"] and len(parse_charset("ALNUM")) == 62


def test_rendered_characters_are_mnist_like_and_reproducible():
    x, y = render_chars("0a1b", 40, seed=3)
    x2, y2 = render_chars("0a1b", 40, seed=3)
    np.testing.assert_array_equal(x, x2)
    assert x.shape == (40, 28, 28) and x.dtype == np.uint8 and set(y) == {0, 1, 2, 3}
    assert all(img[0, 0] == 0 and img.max() > 200 for img in x)  # white on black, like MNIST


def test_train_chars_tiny_run(tmp_path):
    out = tmp_path / "chars.keras"
    result = run_cli(
        "train", "chars", "--charset", "abc", "--count", "120", "--test-count", "30", "--epochs", "1", "--out", out
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["attacker"] == "segment" and info["charset"] == "abc" and info["task"] == "chars"
    assert len(info["confusion_matrix"]) == 3 and 0 <= info["test_accuracy"] <= 1
    attacker = load_attacker(out)
    assert attacker.model.get_layer("fc2").units == 3
    # a CAPTCHA attacker for letters starts from it, keeping every layer
    trained = run_cli(
        "train",
        "captcha",
        "--style",
        "clean",
        "--charset",
        "abc",
        "--count",
        "20",
        "--epochs",
        "1",
        "--from",
        out,
        "--workers",
        "0",
        "--out",
        tmp_path / "letters.keras",
    )
    assert trained.returncode == 0, trained.stderr
    letters = json.loads((tmp_path / "letters.json").read_text())
    assert letters["charset"] == "abc" and letters["initialised_weights"].endswith("(from charset 'abc')")


def test_segment_trains_on_a_set_larger_than_ten(tmp_path):
    """Letters beyond the tenth class index: training, validation and scoring all follow the set."""
    from captchalab.attackers import TrainSettings, get_attacker
    from captchalab.train import train_attacker

    charset = NAMED["lower"]
    source = Source(spec=GenerationSpec("clean", 40, 4, 4, charset, seed=6, params={"spacing": 2.0}))
    info = train_attacker(
        get_attacker("segment")(charset), source, tmp_path / "lower.keras", TrainSettings(epochs=1, seed=6), workers=0
    )
    assert info["charset"] == charset and 0 <= info["val_accuracy"] <= 1
    assert len(info["validation_per_class_accuracy"]) == 26
    report, _ = attack_many(
        [load_attacker(tmp_path / "lower.keras")],
        {"clean": Source(spec=GenerationSpec("clean", 10, 4, 4, charset, seed=7))},
        workers=0,
    )
    assert len(report["confusion_matrix"]) == 26 and report["confusion_labels"] == charset


def test_ignore_case_scoring():
    from captchalab.attack import Item
    from captchalab.attackers.base import Reading

    items = [
        Item(0, "a", "AbC", prepared=1, reading=Reading("abc")),
        Item(1, "b", "xY", prepared=1, reading=Reading("xy")),
    ]
    counted = score(items, NAMED["ALNUM"])
    ignored = score(items, NAMED["ALNUM"], ignore_case=True)
    assert counted["captcha_accuracy"] == 0 and ignored["captcha_accuracy"] == 1
    assert ignored["ignore_case"] and ignored["confusion_labels"] == NAMED["alnum"]


def test_character_accuracy_uses_the_edit_distance():
    from captchalab.attack import Item
    from captchalab.attackers.base import Reading

    assert edit_distance("1234", "2341") == 2 and edit_distance("", "abc") == 3
    items = [
        Item(0, "a", "1234", prepared=1, reading=Reading("12345")),  # one extra: 3 of 4
        Item(1, "b", "5678", prepared=1, reading=Reading("")),
    ]  # nothing read: 0 of 4
    result = score(items, NAMED["digits"])
    assert result["char_accuracy"] == pytest.approx(3 / 8)
    assert result["per_position_accuracy"] == [0.0, 0.0, 0.0, 0.0]  # neither has the right length


def test_letters_dataset_rows_outside_the_model_charset(tmp_path):
    folder = tmp_path / "ds"
    generate_dataset(GenerationSpec("clean", 5, charset="abc", seed=2), folder)
    with (folder / "labels.csv").open("a") as f:
        f.write("00001.png,abz9\n")
    from captchalab.data.dataset import read_dataset

    data = read_dataset(folder, "abc")
    assert len(data) == 5 and data.rejected == [("00001.png", "characters 'z9' outside the charset")]
    assert data.charset == "abc"  # from its manifest


def test_visualize_a_letter(tmp_path):
    chars = tmp_path / "chars.keras"
    assert (
        run_cli(
            "train", "chars", "--charset", "xyz", "--count", "60", "--test-count", "10", "--epochs", "1", "--out", chars
        ).returncode
        == 0
    )
    import cv2
    from captchalab import render

    mask = render.glyph("y", 0, 60)
    cv2.imwrite(str(tmp_path / "y.png"), 255 - mask)  # a dark letter on white
    result = run_cli("visualize", "--model", chars, "--image", tmp_path / "y.png", "--out", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "v" / "index.html").read_text()
    assert "<code>xyz</code>" in page and "(3)" in page
    import re

    assert re.match(r"predicted '[xyz]'; rendered in", result.stderr), result.stderr


def test_attack_letters_with_ignore_case_cli(tmp_path, ctc_letters):
    out = tmp_path / "r"
    result = run_cli(
        "attack",
        "--model",
        ctc_letters,
        "--style",
        "clean",
        "--charset",
        "abc",
        "--ignore-case",
        "--count",
        "10",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["ignore_case"] is True and report["charset"] == "abc"
    assert "case ignored" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def ctc_letters(tmp_path_factory):
    out = tmp_path_factory.mktemp("letters") / "ctc.keras"
    result = run_cli(
        "train",
        "captcha",
        "--attacker",
        "ctc",
        "--style",
        "clean",
        "--charset",
        "abc",
        "--count",
        "30",
        "--epochs",
        "1",
        "--hparam",
        "filters=8",
        "--hparam",
        "rnn_units=16",
        "--from",
        "scratch",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    return out
