"""Rotation CAPTCHAs ("turn the picture upright") through the same house: generated
byte-identically, scored by the smallest turn (symmetric content against every equivalent
answer), read by a naive orientation baseline and a RotNet-style classifier."""

import json
from types import SimpleNamespace

import pytest

from conftest import assert_one_line_error, run_cli


def test_rotations_are_byte_identical_with_any_worker_count(tmp_path):
    for workers in (1, 2):
        made = run_cli(
            "generate",
            "--style",
            "rotation",
            "--count",
            "30",
            "--seed",
            "3",
            "--workers",
            str(workers),
            "--out",
            tmp_path / f"w{workers}",
        )
        assert made.returncode == 0, made.stderr
    files = [
        {p.name: p.read_bytes() for p in (tmp_path / f"w{w}").iterdir() if p.name != "manifest.json"} for w in (1, 2)
    ]
    assert files[0] == files[1]
    rows = (tmp_path / "w1" / "labels.csv").read_text().splitlines()
    assert rows[0] == "filename,angle" and all(0 <= int(r.split(",")[1]) < 360 for r in rows[1:])


def test_angles_are_scored_by_the_smallest_turn():
    from captchalab.kinds import angle_error
    from captchalab.score import score

    assert angle_error(355, 5) == 10 and angle_error(10, 350) == 20 and angle_error(90, 270, symmetry=2) == 0

    def item(truth, guess, symmetry=1):
        return SimpleNamespace(
            text=truth,
            question={},
            details={"symmetry": symmetry},
            skipped=False,
            name="x",
            error=None,
            reading=SimpleNamespace(text=guess, details=None),
        )

    result = score([item("355", "5"), item("0", "11"), item("90", "270", 2), item("10", "?")], "", kind="rotation")
    assert result["captcha_accuracy"] == pytest.approx(2 / 4) and result["tolerance_degrees"] == 10
    assert result["no_answer"] == 1 and result["mean_abs_error_degrees"] == pytest.approx((10 + 11 + 0) / 3)


def test_the_baseline_and_a_trained_rotnet_read_turned_pictures(tmp_path):
    model = tmp_path / "rn.keras"
    trained = run_cli(
        "train",
        "captcha",
        "--style",
        "rotation",
        "--count",
        "60",
        "--budget",
        "200",
        "--fresh",
        "--workers",
        "1",
        "--out",
        model,
    )
    assert trained.returncode == 0, trained.stderr
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["attacker"] == "rotnet" and info["fresh_every_epoch"] is True
    made = run_cli(
        "generate",
        "--style",
        "rotation",
        "--param",
        "content=objects",
        "--strength",
        "0",
        "--count",
        "40",
        "--seed",
        "9",
        "--out",
        tmp_path / "d",
    )
    assert made.returncode == 0, made.stderr
    attacked = run_cli(
        "attack", "--model", model, "--attacker", "orientation", "--dataset", tmp_path / "d", "--out", tmp_path / "r"
    )
    assert attacked.returncode == 0, attacked.stderr
    per = json.loads((tmp_path / "r" / "report.json").read_text())["per_attacker"]
    # sky above ground: the baseline finds the right quarter turn far more often than chance (25%)
    assert per["orientation"]["within_degrees"]["45"] >= 0.6
    assert per["rn (rotnet)"]["state"]["lower_bound"] is True


def test_a_texture_scene_takes_the_horizons_clue_away():
    from captchalab.attack import attack_many
    from captchalab.attackers.base import make_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    found = {}
    for scene in ("horizon", "texture"):
        spec = GenerationSpec("rotation", 80, seed=4, strength=0.0, params={"content": "objects", "scene": scene})
        result, _ = attack_many([make_attacker("orientation")], {"d": Source(spec)}, workers=0)
        found[scene] = result["within_degrees"]["45"]
    # the baseline puts the brighter half on top: right for a sky, near chance (25%) without one
    assert found["horizon"] >= 0.6 and found["texture"] <= 0.45, found


def test_bad_rotations_are_one_line_errors_or_rejected_rows(tmp_path):
    assert_one_line_error(
        run_cli("generate", "--style", "rotation", "--param", "content=clouds", "--out", tmp_path / "x"),
        "use objects, words or mixed",
    )
    assert_one_line_error(
        run_cli("generate", "--style", "rotation", "--param", "scene=sky", "--out", tmp_path / "x"),
        "use horizon or texture",
    )
    made = run_cli("generate", "--style", "rotation", "--count", "3", "--out", tmp_path / "d")
    assert made.returncode == 0, made.stderr
    labels = tmp_path / "d" / "labels.csv"
    rows = labels.read_text().splitlines()
    rows[1], rows[2] = rows[1].split(",")[0] + ",400", rows[2].split(",")[0] + ",-5"
    labels.write_text("\n".join(rows) + "\n")
    from captchalab.data.dataset import read_dataset

    data = read_dataset(tmp_path / "d")
    assert len(data) == 1 and all("whole degrees in [0, 360)" in why for _, why in data.rejected)
