"""Slider CAPTCHAs ("drag the piece into the gap") through the same house: generated
byte-identically with any worker count, the piece served apart with its transparency, scored
within a tolerance in pixels, read by the classic OpenCV template matcher."""

import json
from types import SimpleNamespace

import pytest

from conftest import assert_one_line_error, run_cli


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "manifest.json"}


def test_sliders_are_byte_identical_with_any_worker_count_and_keep_their_piece(tmp_path):
    for workers in (1, 2):
        made = run_cli(
            "generate",
            "--style",
            "slider",
            "--count",
            "40",
            "--seed",
            "3",
            "--workers",
            str(workers),
            "--out",
            tmp_path / f"w{workers}",
        )
        assert made.returncode == 0, made.stderr
    assert files_of(tmp_path / "w1") == files_of(tmp_path / "w2")
    from captchalab.data.dataset import Source, read_dataset

    data = read_dataset(tmp_path / "w1")
    assert data.kind == "slider" and (tmp_path / "w1" / "00000.piece.png").is_file()
    sample = Source(dataset=data).sample(0)
    piece = sample.parts["piece"]
    assert piece.shape[2] == 4 and piece[..., 3].min() == 0 and piece[..., 3].max() == 255
    assert 0 <= int(sample.text) <= sample.image.shape[1] - piece.shape[1]


def test_slider_scoring_within_a_tolerance():
    from captchalab.score import score

    def item(truth, guess):
        return SimpleNamespace(
            text=truth,
            question={"y": 10},
            reading=SimpleNamespace(text=guess, details=None),
            skipped=False,
            name="x",
            error=None,
        )

    result = score(
        [item("100", "100"), item("100", "105"), item("100", "94"), item("100", ""), item("50", "80")],
        "",
        kind="slider",
    )
    assert result["captcha_accuracy"] == pytest.approx(2 / 5) and result["tolerance_px"] == 5
    assert result["within_px"]["1"] == pytest.approx(1 / 5) and result["within_px"]["10"] == pytest.approx(3 / 5)
    assert result["no_answer"] == 1 and result["mean_abs_error_px"] == pytest.approx((0 + 5 + 6 + 30) / 4)


def test_the_template_matcher_finds_plain_gaps(tmp_path):
    made = run_cli(
        "generate", "--style", "slider", "--strength", "0", "--count", "60", "--seed", "4", "--out", tmp_path / "d"
    )
    assert made.returncode == 0, made.stderr
    attacked = run_cli("attack", "--attacker", "template", "--dataset", tmp_path / "d", "--out", tmp_path / "r")
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["kind"] == "slider" and report["captcha_accuracy"] >= 0.9
    assert report["state"]["lower_bound"] is False  # off the shelf: nothing to converge


def test_off_the_shelf_slider_solvers_read_generated_sliders_from_the_command_line(tmp_path):
    pytest.importorskip("ddddocr")
    # no model, a style of another kind than text: nothing asks for a character set
    attacked = run_cli(
        "attack",
        "--attacker",
        "ddddocr-slide",
        "--attacker",
        "template",
        "--style",
        "slider",
        "--strength",
        "0",
        "--count",
        "30",
        "--out",
        tmp_path / "r",
    )
    assert attacked.returncode == 0, attacked.stderr
    assert "mean error" in attacked.stdout + attacked.stderr
    per = json.loads((tmp_path / "r" / "report.json").read_text())["per_attacker"]
    # ddddocr answers with the match's centre; turned into the gap's left edge it lands on the gap
    assert per["ddddocr-slide"]["captcha_accuracy"] >= 0.8 and per["template"]["captcha_accuracy"] >= 0.9


def test_bad_sliders_are_one_line_errors_or_named_skips(tmp_path):
    assert_one_line_error(
        run_cli(
            "generate", "--style", "slider", "--param", "side=110", "--param", "width=200", "--out", tmp_path / "x"
        ),
        "does not fit",
    )
    assert_one_line_error(
        run_cli("generate", "--style", "slider", "--length", "4", "--out", tmp_path / "x"),
        "--length applies to text CAPTCHAs only",
    )
    assert not (tmp_path / "x").exists()
    made = run_cli("generate", "--style", "slider", "--count", "4", "--out", tmp_path / "d")
    assert made.returncode == 0, made.stderr
    labels = tmp_path / "d" / "labels.csv"
    rows = labels.read_text().splitlines()
    rows[1] = rows[1].rsplit(",", 1)[0] + ",left"
    labels.write_text("\n".join(rows) + "\n")
    (tmp_path / "d" / "00001.piece.png").unlink()
    attacked = run_cli("attack", "--attacker", "template", "--dataset", tmp_path / "d", "--out", tmp_path / "r")
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["count"] == 2 and report["skipped_files"] == ["00001.png"]
    assert report["rejected_rows"][0][0] == "00000.png" and "whole numbers" in report["rejected_rows"][0][1]


def test_the_learned_locator_trains_through_the_shared_loop_and_reads(tmp_path):
    model = tmp_path / "loc.keras"
    trained = run_cli(
        "train", "captcha", "--style", "slider", "--count", "60", "--budget", "300", "--workers", "1", "--out", model
    )
    assert trained.returncode == 0, trained.stderr
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["attacker"] == "locator" and info["kind"] == "slider"
    assert info["convergence"]["converged"] is False and len(info["history"]) >= 1
    attacked = run_cli(
        "attack",
        "--model",
        model,
        "--attacker",
        "template",
        "--style",
        "slider",
        "--count",
        "20",
        "--out",
        tmp_path / "r",
    )
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert set(report["per_attacker"]) == {"loc (locator)", "template"}
    assert all(
        0 <= r["captcha_accuracy"] <= 1 and r["mean_abs_error_px"] is not None for r in report["per_attacker"].values()
    )
