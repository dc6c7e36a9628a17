import json
import re

import pytest

from captchalab.errors import CaptchalabError
from captchalab.model import load_model
from captchalab.sweep import SweepConfig, parse_range, run_sweep
from conftest import assert_one_line_error, run_cli


def test_parse_range():
    assert parse_range("0:1:5", "--strength") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_range("0.5:0.5:1", "--strength") == [0.5]
    for bad in ("1:0:5", "0:1:0", "0:1", "a:b:c", "0:1:1", "0.3:0.3:3"):
        with pytest.raises(CaptchalabError):
            parse_range(bad, "--strength")


def _config(model, **kw):
    return SweepConfig(
        model=str(model), style="clean", knob="strength", values=[0.0, 0.5, 1.0], count=6, workers=1, **kw
    )


def test_tiny_sweep_report_and_resume(tmp_path, tiny_model_path):
    model = load_model(tiny_model_path)
    out = tmp_path / "sweep"
    report = run_sweep(model, _config(tiny_model_path), out)
    assert [s["value"] for s in report["steps"]] == [0.0, 0.5, 1.0]
    for step in report["steps"]:
        assert step["status"] == "done" and step["count"] == 6
        for key in ("char_accuracy", "captcha_accuracy", "segmentation_rate"):
            assert 0 <= step[key] <= 1
    saved = json.loads((out / "report.json").read_text())
    assert len(saved["steps"]) == 3 and "manifest" in saved
    page = (out / "report.html").read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    assert page.count("data:image/png;base64,") >= 3
    # resume: finished steps are read back, not redone
    (out / "steps" / "step-02.json").unlink()
    marker = (out / "steps" / "step-00.json").stat().st_mtime_ns
    seen = []
    run_sweep(
        model,
        _config(tiny_model_path),
        out,
        resume=True,
        on_step=lambda s, ran, left, secs: seen.append((s["step"], ran, left)),
    )
    assert seen == [(2, 1, 0)]
    assert (out / "steps" / "step-00.json").stat().st_mtime_ns == marker


def test_failing_step_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_model_path, monkeypatch):
    import captchalab.sweep as sweep

    real = sweep.run_step

    def flaky(model, config, i, value, out):
        if i == 1:
            raise RuntimeError("generator exploded")
        return real(model, config, i, value, out)

    monkeypatch.setattr(sweep, "run_step", flaky)
    report = run_sweep(load_model(tiny_model_path), _config(tiny_model_path), tmp_path / "s")
    assert [s["status"] for s in report["steps"]] == ["done", "failed", "done"]
    assert "generator exploded" in report["steps"][1]["error"]
    assert "failed" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--strength", "1:0:5"], "above end"),
        (["--strength", "0:1:0"], "at least 1"),
        (["--param", "wobble=0:1:3"], "no parameter 'wobble'"),
        (["--strength", "0:1:3", "--resume"], "not a sweep"),
    ],
)
def test_sweep_errors(tmp_path, tiny_model_path, args, fragment):
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli("sweep", "--model", tiny_model_path, "--style", "clean", *args, "--count", "3", "--out", out)
    assert_one_line_error(result, fragment)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_unknown_style_in_a_list(tmp_path, tiny_model_path):
    result = run_cli(
        "attack", "--model", tiny_model_path, "--styles", "clean,nope", "--count", "3", "--out", tmp_path / "r"
    )
    assert_one_line_error(result, "unknown style 'nope'")
    result = run_cli("matrix", "--train-styles", "clean", "--test-styles", "clean,nope", "--out", tmp_path / "m")
    assert_one_line_error(result, "unknown style 'nope'")


def test_multi_style_attack_and_matrix(tmp_path, tiny_model_path):
    result = run_cli(
        "attack",
        "--model",
        tiny_model_path,
        "--styles",
        "clean,distorted",
        "--count",
        "5",
        "--workers",
        "1",
        "--out",
        tmp_path / "r",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert set(report["per_style"]) == {"clean", "distorted"} and report["count"] == 10
    result = run_cli(
        "matrix",
        "--train-styles",
        "clean,overlap",
        "--test-styles",
        "clean,distorted,noisy",
        "--count",
        "4",
        "--train-count",
        "12",
        "--epochs",
        "1",
        "--from",
        tiny_model_path,
        "--workers",
        "1",
        "--out",
        tmp_path / "m",
    )
    assert result.returncode == 0, result.stderr
    matrix = json.loads((tmp_path / "m" / "report.json").read_text())["matrix"]["captcha_accuracy"]
    assert len(matrix) == 2 and all(len(row) == 3 for row in matrix)
    assert (tmp_path / "m" / "heatmap.png").is_file()


def test_retrain_adds_an_adapting_attacker(tmp_path, tiny_model_path):
    config = SweepConfig(
        model=str(tiny_model_path),
        style="clean",
        knob="spacing",
        values=[1.2, 2.0],
        count=4,
        retrain=True,
        train_count=8,
        train_epochs=1,
        workers=1,
    )
    report = run_sweep(load_model(tiny_model_path), config, tmp_path / "s")
    for step in report["steps"]:
        assert step["status"] == "done", step
        assert set(step["retrained"]) >= {"captcha_accuracy", "char_accuracy", "segmentation_rate"}
        assert step["parameters"]["spacing"] == step["value"]
    assert (tmp_path / "s" / "steps" / "attacker-01.keras").is_file()
