"""Adversarial CAPTCHAs: the budget holds on the saved PNGs, gradients lower the attacker's
confidence, reruns are byte-identical, defences do what they say, the report has its fields."""

import json

import cv2
import numpy as np
import pytest

from captchalab.attackers import TrainSettings, get_attacker, load_attacker
from captchalab.data.dataset import GenerationSpec, Source
from captchalab.errors import CaptchalabError
from captchalab.generation.adversarial import PerturbSpec, parse_eps, parse_eps_list, perturb
from captchalab.study.adversarial import defend, parse_defences, psnr, ssim
from captchalab.train import train_attacker
from conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def ctc_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("adv") / "ctc.keras"
    train_attacker(
        get_attacker("ctc")("0123456789", {"filters": 8, "rnn_units": 16}),
        Source(spec=GenerationSpec("clean", 160, seed=4, strength=0.0)),
        out,
        TrainSettings(epochs=3, batch_size=16, seed=4),
        workers=0,
    )
    return out


def loss_of(attacker, images, texts, boxes, targets=None):
    """The attacker's differentiable loss as a function of a padded batch of pixels."""
    import tensorflow as tf

    _, _, constants = attacker.adversarial_objective(images, texts, boxes, targets)
    constants = tuple(tf.constant(c) for c in constants)
    return lambda x: attacker.adversarial_loss(tf.constant(x), constants)


def batch(n=6, seed=8, style="clean"):
    samples = [Source(spec=GenerationSpec(style, n, seed=seed, strength=0.2)).sample(i) for i in range(n)]
    return [s.image for s in samples], [s.text for s in samples], [s.boxes for s in samples]


def test_eps_parsing():
    assert parse_eps("8/255") == 8 and parse_eps("4") == 4
    assert parse_eps_list("0,2,4,8,16/255") == [0, 2, 4, 8, 16]
    for bad in ("300", "-1", "1/0", "x"):
        with pytest.raises(CaptchalabError):
            parse_eps(bad)


@pytest.mark.parametrize("model_name", ["ctc", "segment"])
def test_pgd_lowers_the_loss_of_the_true_text_within_the_budget(model_name, ctc_model, tiny_model_path):
    attacker = load_attacker(ctc_model if model_name == "ctc" else tiny_model_path)
    images, texts, boxes = batch()
    loss = loss_of(attacker, images, texts, boxes)
    from captchalab.generation.adversarial import pad_batch

    before = loss(pad_batch(images)[0]).numpy()
    adv = perturb(attacker, images, texts, boxes, PerturbSpec("pgd", 4, 5, seed=1), 0)
    after = loss(pad_batch(adv)[0]).numpy()
    assert after.mean() > before.mean()  # further from the true text: lower confidence in it
    for a, c in zip(adv, images):
        assert a.shape == c.shape and a.dtype == np.uint8
        assert np.abs(a.astype(int) - c.astype(int)).max() <= 4


def test_targeted_pgd_moves_towards_the_target(ctc_model):
    attacker = load_attacker(ctc_model)
    images, texts, boxes = batch(4)
    loss_to_target = loss_of(attacker, images, texts, boxes, ["7777"] * 4)
    from captchalab.generation.adversarial import pad_batch

    adv = perturb(attacker, images, texts, boxes, PerturbSpec("pgd", 8, 5, target_text="7777", seed=1), 0)
    assert loss_to_target(pad_batch(adv)[0]).numpy().mean() < loss_to_target(pad_batch(images)[0]).numpy().mean()


def test_generated_adversarial_dataset_is_within_eps_and_byte_identical(tmp_path, ctc_model):
    common = [
        "generate",
        "--style",
        "clean",
        "--count",
        "12",
        "--seed",
        "3",
        "--adversarial-against",
        ctc_model,
        "--eps",
        "6/255",
        "--steps",
        "3",
    ]
    for name, workers in (("a", "1"), ("b", "2")):
        result = run_cli(*common, "--workers", workers, "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
    plain = run_cli("generate", "--style", "clean", "--count", "12", "--seed", "3", "--out", tmp_path / "plain")
    assert plain.returncode == 0
    files = lambda f: {p.name: p.read_bytes() for p in (tmp_path / f).iterdir()}
    assert files("a") == files("b")
    assert (tmp_path / "a" / "labels.csv").read_text() == (tmp_path / "plain" / "labels.csv").read_text()
    changed = 0
    for name in files("plain"):
        if name.endswith(".png"):
            adv = cv2.imread(str(tmp_path / "a" / name)).astype(int)
            clean = cv2.imread(str(tmp_path / "plain" / name)).astype(int)
            assert np.abs(adv - clean).max() <= 6
            changed += int((adv != clean).any())
    assert changed == 12
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())["adversarial"]
    assert manifest["method"] == "pgd" and manifest["eps"] == 6 and manifest["steps"] == 3
    assert len(manifest["target_model_sha256"]) == 64


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--adversarial-against", "DDDD", "--eps", "8/255"], "only be a transfer target"),
        (["--adversarial-against", "CTC", "--eps", "300/255"], "outside [0, 255]/255"),
        (["--adversarial-against", "CTC", "--steps", "0"], "--steps must be at least 1"),
        (["--adversarial-against", "CTC", "--charset", "abc"], "cannot express 'abc'"),
        (["--adversarial-against", "CTC", "--method", "magic"], "'magic' is not one of 'fgsm', 'pgd', 'eot'"),
    ],
)
def test_generate_adversarial_errors(tmp_path, ctc_model, args, fragment):
    if "DDDD" in args:
        pytest.importorskip("ddddocr")
        from captchalab.fileio import atomic_write_json

        model = tmp_path / "dddd.keras"
        model.write_bytes(ctc_model.read_bytes())
        atomic_write_json(model.with_suffix(".json"), {"attacker": "ddddocr", "charset": "0123456789"})
    else:
        model = ctc_model
    args = [str(model) if a in ("DDDD", "CTC") else a for a in args]
    result = run_cli("generate", "--style", "clean", "--count", "3", *args, "--out", tmp_path / "out")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_adversarial_command_refuses_a_read_only_target(tmp_path):
    pytest.importorskip("ddddocr")
    with pytest.raises(CaptchalabError, match="only be a transfer target"):
        from captchalab.generation.adversarial import check_target

        check_target(get_attacker("ddddocr")("0123456789"))


def test_defences_change_the_pixels_as_documented():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    assert parse_defences("median3,jpeg75,bits4,blur1") == ["median3", "jpeg75", "bits4", "blur1"]
    bits = defend(image, "bits4")
    assert set(np.unique(bits)) <= {16 * k + 8 for k in range(16)}
    assert np.array_equal(defend(image, "median3"), cv2.medianBlur(image, 3))
    assert defend(image, "blur1").std() < image.std()  # smoother
    jpeg = defend(image, "jpeg75")
    assert jpeg.shape == image.shape and not np.array_equal(jpeg, image)
    for bad in ("median4", "jpeg0", "bits9", "sharpen2", "blur"):
        with pytest.raises(CaptchalabError):
            parse_defences(bad)
    assert psnr(image, image) == float("inf") and ssim(image, image) == pytest.approx(1.0)
    assert 0 < ssim(image, defend(image, "blur1")) < 1


def test_the_adversarial_report(tmp_path, ctc_model, tiny_model_path):
    from captchalab.data.dataset import GenerationSpec, generate_dataset
    from captchalab.humans.pool import StudySettings, open_study

    # people answered the clean design (eps 0) only, all of them right
    generate_dataset(GenerationSpec("clean", 6, seed=9), tmp_path / "people-saw")
    study = open_study(
        tmp_path / "humans", [tmp_path / "people-saw"], StudySettings(per_person=6, practice=0, attention=0)
    )
    person = study.start()
    while (served := study.next_item(person.id)) is not None:
        study.answer(person.id, served.token, served.item.truth, ms=2000)
    out = tmp_path / "adv"
    result = run_cli(
        "adversarial",
        "--style",
        "clean",
        "--against",
        ctc_model,
        "--transfer",
        tiny_model_path,
        "--count",
        "12",
        "--eps",
        "0,4,8/255",
        "--steps",
        "3",
        "--defences",
        "median3,bits4",
        "--retrain",
        "--retrain-count",
        "40",
        "--retrain-budget",
        "360",
        "--out",
        out,
        "--humans",
        tmp_path / "humans",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert [r["eps"] for r in report["rows"]] == [0, 4, 8]
    assert report["target"] == "ctc (ctc)" and "tiny (segment)" in report["attackers"]
    for row in report["rows"]:
        assert set(row["accuracy"]) == set(report["attackers"])
        assert set(row["defended"]["ctc (ctc)"]) == {"median3", "bits4"}
        assert row["max_change"] <= row["eps"]
    assert report["rows"][0]["ssim"] == 1.0 and report["rows"][2]["psnr_db"] > 20
    assert set(report["retrained"]["white_box_accuracy"]) == {"0", "4", "8"}
    page = (out / "report.html").read_text()
    assert "human study" in page and page.count("data:image/png;base64,") == 2
    assert report["rows"][0]["humans"]["human_success"] == 1.0 and report["rows"][0]["humans"]["human_answers"] == 6
    assert report["rows"][1]["humans"] is None  # nobody answered the perturbed ones
    assert "People at each eps" in (out / "report.md").read_text()
    assert (out / "retrained.keras").is_file()
