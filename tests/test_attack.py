import json
import os

import cv2
import pytest

from captchalab.attack import attack_source
from captchalab.attackers import load_attacker
from captchalab.data.dataset import GenerationSpec, Source, generate_dataset, read_dataset
from captchalab.errors import CaptchalabError
from conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def clean_model(tmp_path_factory, tiny_model_path):
    """The tiny MNIST model fine-tuned on 60 clean CAPTCHAs through the real CLI."""
    out = tmp_path_factory.mktemp("captcha") / "clean.keras"
    result = run_cli(
        "train",
        "captcha",
        "--style",
        "clean",
        "--count",
        "60",
        "--from",
        tiny_model_path,
        "--epochs",
        "6",
        "--workers",
        "1",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_train_captcha_records_its_data(clean_model):
    info = json.loads(clean_model.with_suffix(".json").read_text())
    assert info["captchas"] == 60 and info["captchas_used"] + info["miscounted"] == 60 - info["validation_count"]
    assert info["train_crops"] == 4 * (info["captchas_used"])
    assert info["attacker"] == "segment" and info["charset"] == "0123456789"
    assert info["source"]["generator"] == "clean"
    assert info["initialised_from"].endswith("tiny.keras")
    assert 0 <= info["val_accuracy"] <= 1 and "manifest" in info


def test_attack_end_to_end_writes_the_report(tmp_path, clean_model):
    out = tmp_path / "report"
    result = run_cli(
        "attack",
        "--model",
        clean_model,
        "--style",
        "clean",
        "--count",
        "40",
        "--seed",
        "7",
        "--workers",
        "2",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    for key in (
        "char_accuracy",
        "captcha_accuracy",
        "count",
        "skipped",
        "per_position_accuracy",
        "confusion_matrix",
        "captchas_per_second",
        "manifest",
        "segmentation_box_rate",
    ):
        assert key in report
    assert report["count"] == 40 and report["skipped"] == 0
    assert report["segmentation_box_rate"] == 1.0  # clean CAPTCHAs always segment where they were drawn
    assert report["char_accuracy"] > 0.5  # a real, if tiny, model reads most characters
    assert "edit distance" in report["char_accuracy_definition"]
    assert len(report["per_position_accuracy"]) == 4
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html


def _dataset(tmp_path, count=12):
    folder = tmp_path / "ds"
    generate_dataset(GenerationSpec("clean", count, 4, 4, seed=4), folder)
    return folder


def test_imported_dataset_with_a_corrupt_image_is_skipped_and_named(tmp_path, clean_model):
    folder = _dataset(tmp_path)
    (folder / "00003.png").write_bytes(b"not a png")
    jpg = cv2.imread(str(folder / "00004.png"))
    cv2.imwrite(str(folder / "00004.jpg"), jpg)  # other formats are fine
    labels = (folder / "labels.csv").read_text().replace("00004.png", "00004.jpg")
    (folder / "labels.csv").write_text(labels)
    (folder / "boxes.json").unlink()
    result, _ = attack_source(load_attacker(clean_model), Source(dataset=read_dataset(folder)), workers=1)
    assert result["skipped"] == 1 and result["skipped_files"] == ["00003.png"]
    assert "not an image" in result["skipped_reasons"]["00003.png"]
    assert result["count"] == 11


@pytest.mark.parametrize("bad_name", ["/etc/passwd", "../outside.png", "sub/../../x.png", "link.png"])
def test_labels_escaping_the_folder_are_refused(tmp_path, bad_name):
    folder = _dataset(tmp_path, 3)
    (tmp_path / "outside.png").write_bytes((folder / "00000.png").read_bytes())
    os.symlink(tmp_path / "outside.png", folder / "link.png")
    with (folder / "labels.csv").open("a") as f:
        f.write(f"{bad_name},1234\n")
    with pytest.raises(CaptchalabError, match="outside the dataset folder"):
        read_dataset(folder)


def test_cli_refuses_an_escaping_dataset(tmp_path, clean_model):
    folder = _dataset(tmp_path, 3)
    with (folder / "labels.csv").open("a") as f:
        f.write("../../secret.png,1234\n")
    result = run_cli("attack", "--model", clean_model, "--dataset", folder, "--out", tmp_path / "r")
    assert_one_line_error(result, "row 5")
    assert not (tmp_path / "r").exists()


def test_bad_rows_are_rejected_and_bad_files_are_errors(tmp_path):
    folder = _dataset(tmp_path, 3)
    with (folder / "labels.csv").open("a") as f:
        f.write("00001.png,\n00002.png,12a4\n")
    data = read_dataset(folder, "0123456789")
    assert len(data) == 3 and [why for _, why in data.rejected] == ["empty text", "characters 'a' outside the charset"]
    (folder / "labels.csv").write_text("file,label\n00000.png,1234\n")
    with pytest.raises(CaptchalabError, match="header"):
        read_dataset(folder)
    (folder / "labels.csv").unlink()
    with pytest.raises(CaptchalabError, match="no labels.csv"):
        read_dataset(folder)


def test_corrupt_or_foreign_model_files(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage")
    result = run_cli("attack", "--model", bad, "--style", "clean", "--count", "2", "--out", tmp_path / "r")
    assert_one_line_error(result, "not a loadable keras model")
    import keras

    other = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(name="flat"), keras.layers.Dense(10, name="fc2")]
    )
    other.save(tmp_path / "other.keras")
    result = run_cli(
        "attack", "--model", tmp_path / "other.keras", "--style", "clean", "--count", "2", "--out", tmp_path / "r"
    )
    assert_one_line_error(result, "missing conv1")  # no JSON: taken as the seed's network
    assert not (tmp_path / "r").exists()


def test_expect_out_of_range(tmp_path, clean_model):
    result = run_cli(
        "attack", "--model", clean_model, "--style", "clean", "--count", "2", "--expect", "9", "--out", tmp_path / "r"
    )
    assert_one_line_error(result, "--expect")
    assert not (tmp_path / "r").exists()


def test_an_existing_output_is_replaced_only_with_force(tmp_path, clean_model):
    out = tmp_path / "r"
    args = ["attack", "--model", clean_model, "--style", "clean", "--count", "3", "--workers", "0", "--out", out]
    assert run_cli(*args).returncode == 0
    first = (out / "report.json").read_bytes()
    assert_one_line_error(run_cli(*args), "pass --force")
    assert (out / "report.json").read_bytes() == first
    assert run_cli(*args, "--force").returncode == 0
    data = tmp_path / "mine"
    data.mkdir()
    (data / "precious.txt").write_text("keep me")
    assert_one_line_error(run_cli(*args[:-1], data), "pass --force")
    assert (data / "precious.txt").read_text() == "keep me"


def test_train_refuses_to_overwrite_a_model_without_force(tmp_path, clean_model):
    import shutil

    out = tmp_path / "m.keras"
    shutil.copy(clean_model, out)
    shutil.copy(clean_model.with_suffix(".json"), out.with_suffix(".json"))
    before = out.read_bytes()
    result = run_cli(
        "train",
        "captcha",
        "--style",
        "clean",
        "--count",
        "20",
        "--epochs",
        "1",
        "--from",
        "scratch",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert_one_line_error(result, "pass --force")
    assert out.read_bytes() == before


def test_a_narrower_reader_starts_from_a_base_of_its_own_shape_and_a_start_that_fits_no_layer_is_scratch(tmp_path):
    def train(out, *options):
        return run_cli("train", "captcha", "--style", "clean", "--count", "40", "--epochs", "1", "--workers", "0",
                       *options, "--out", out, cwd=tmp_path)  # fmt: skip

    # the shipped ctc base has 16 first filters and 128 GRU units: a reader of 8 and 16 gets its own
    # base (trained on the base mixture the first time; here one stands in for it)
    own = tmp_path / "models" / "ctc-digits-filters8-rnn_units16.keras"
    assert train(own, "--attacker", "ctc:filters=8,rnn_units=16", "--from", "scratch").returncode == 0
    started = train(tmp_path / "narrow.keras", "--attacker", "ctc:filters=8,rnn_units=16")
    assert started.returncode == 0, started.stderr
    assert json.loads((tmp_path / "narrow.json").read_text())["initialised_from"].endswith(own.name)
    # a start none of whose layers fits: from scratch, at the full rate
    result = train(tmp_path / "other.keras", "--attacker", "ctc:filters=12,rnn_units=24", "--from", own)
    assert result.returncode == 0, result.stderr
    assert f"no layer of {own.name} fits this model, so it trained from scratch" in result.stderr
    info = json.loads((tmp_path / "other.json").read_text())
    assert info["initialised_from"] == "scratch" and info["initialised_weights"].startswith("nothing")
    assert info["learning_rate"] == 2e-3  # a fine-tune's halved rate would only slow a start from nothing


def test_a_second_run_into_a_model_being_trained_is_refused(tmp_path):
    from captchalab.training import training_lock

    out = tmp_path / "models" / "m.keras"
    with training_lock(out):  # a run already training into it
        second = run_cli(
            "train",
            "captcha",
            "--style",
            "clean",
            "--count",
            "20",
            "--attacker",
            "ctc",
            "--from",
            "scratch",
            "--epochs",
            "1",
            "--workers",
            "1",
            "--out",
            out,
        )
        assert_one_line_error(second, "another run is training")
        assert not out.exists()
    assert list(out.parent.iterdir()) == []  # the lock leaves nothing beside the model
    first = run_cli(
        "train",
        "captcha",
        "--style",
        "clean",
        "--count",
        "20",
        "--attacker",
        "ctc",
        "--hparam",
        "filters=8",
        "--hparam",
        "rnn_units=16",
        "--from",
        "scratch",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--out",
        out,
    )
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.json", "m.keras"]


@pytest.mark.parametrize("kind", ["text", "arithmetic"])
def test_a_score_counted_chunk_by_chunk_is_the_score_of_the_whole(kind):
    """An attack counts each chunk of readings as it comes and keeps none (an attack of a million
    CAPTCHAs must not hold a million readings): the report is the one all of them at once gives."""
    import random

    from captchalab.attack import Item
    from captchalab.attackers.base import Reading
    from captchalab.kinds import get_kind
    from captchalab.score import Tally, score

    rng = random.Random(3)
    chars = "0123456789" + ("+-×=?" if kind == "arithmetic" else "")
    items = []
    for i in range(700):
        truth = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 7)))
        truth = f"{truth[:2]}+{truth[2:4]}=?" if kind == "arithmetic" else truth
        guess = "".join(c if rng.random() < 0.8 else rng.choice(chars) for c in truth)[: rng.randint(2, 9)]
        boxes = [(k * 10, 0, k * 10 + 8, 20) for k in range(len(guess))] if rng.random() < 0.5 else None
        truth_boxes = [(k * 10 + rng.randint(-3, 3), 0, k * 10 + 8, 20) for k in range(len(truth))]
        skipped = rng.random() < 0.05
        items.append(Item(i, f"{i}.png", truth, None if skipped else True, truth_boxes,
                          error="unreadable" if skipped else None, reading=Reading(guess, boxes=boxes)))  # fmt: skip
    whole = score(items, chars, kind=kind)
    tally = Tally(chars, kind=kind)
    start = 0
    while start < len(items):  # chunks of uneven sizes, as the workers hand them over
        step = rng.randint(1, 90)
        tally.add(items[start : start + step])
        start += step
    assert tally.result() == whole
    assert whole["count"] + whole["skipped"] == 700 and 0 < whole["captcha_accuracy"] < 1
    read = [it for it in items if not it.skipped]
    right = sum(get_kind(kind).correct(it.text, it.reading.text) for it in read)
    assert whole["count"] == len(read) and whole["captcha_accuracy"] == right / len(read)
    with_boxes = [it for it in read if it.reading.boxes is not None]
    assert whole["segmentation_rate"] == sum(len(it.reading.boxes) == len(it.text) for it in with_boxes) / len(
        with_boxes
    )
    assert len(whole["per_position_accuracy"]) == 7
