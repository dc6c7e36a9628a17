"""Writes that fail: a full disk or a file-size limit (simulated with RLIMIT_FSIZE, under which a
write fails with EFBIG; a read-only check by chmod passes falsely as root). Each command says so
in one line naming the path, leaves nothing half-written, and works once writes do."""

import json
import resource
import subprocess
import sys

from conftest import assert_one_line_error, run_cli


def run_limited(limit_bytes: int, *args):
    """`captchalab ARGS` with every file it writes limited to `limit_bytes`."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "captchalab", *map(str, args)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
    )


def test_a_dataset_that_cannot_be_written_is_named_and_not_left_half_written(tmp_path):
    out = tmp_path / "data"
    failed = run_limited(2048, "generate", "--style", "distorted", "--count", 40, "--out", out)
    assert_one_line_error(failed, f"cannot write {out}/")
    assert "file too large" in failed.stderr.lower()
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary one
    done = run_cli("generate", "--style", "distorted", "--count", 40, "--out", out)
    assert done.returncode == 0 and len(list(out.glob("*.png"))) == 40


def test_a_model_and_a_report_that_cannot_be_written_are_named_and_the_run_works_again(tmp_path):
    data, model, report = tmp_path / "data", tmp_path / "reader.keras", tmp_path / "report"
    assert run_cli("generate", "--style", "clean", "--count", 30, "--seed", 2, "--out", data).returncode == 0
    train = ["train", "captcha", "--dataset", data, "--attacker", "ctc:filters=8,rnn_units=16", "--from", "scratch",
             "--budget", 60, "--out", model]  # fmt: skip
    failed = run_limited(16 * 1024, *train)
    assert_one_line_error(failed, f"cannot write {tmp_path}/.reader.keras.checkpoint/")
    assert not model.exists() and not model.with_suffix(".json").exists()
    assert run_cli(*train).returncode == 0 and model.is_file()  # once writes work, the same command finishes
    attack = ["attack", "--model", model, "--dataset", data, "--out", report]
    failed = run_limited(8 * 1024, *attack)
    assert_one_line_error(failed, f"cannot write {report}")
    assert not report.exists()
    assert run_cli(*attack).returncode == 0
    assert json.loads((report / "report.json").read_text())["count"] == 30
