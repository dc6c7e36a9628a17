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


def test_a_study_cell_that_cannot_be_written_is_named_and_resume_finishes_the_study(tmp_path, tiny_model_path):
    from test_study import numbers, write_study

    path = write_study(tmp_path, tiny_model_path)
    out = tmp_path / "out"
    failed = run_limited(1024, "run", path, "--out", out)  # study.json fits, the cell's model file does not
    assert_one_line_error(failed, "cannot write /")
    assert "file too large" in failed.stderr.lower() and failed.stderr.count("\n") <= 2, failed.stderr
    assert list((out / "cells").iterdir()) == []  # the study stopped: no cell recorded as failed for it
    resumed = run_cli("run", path, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    whole = run_cli("run", path, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    cells = [json.loads((folder / "cells.json").read_text()) for folder in (out, tmp_path / "whole")]
    assert numbers(cells[0]) == numbers(cells[1])


def test_an_answer_that_cannot_be_saved_is_refused_then_saved_once_when_sent_again(tmp_path):
    import pytest

    from captchalab.data.dataset import GenerationSpec, generate_dataset
    from captchalab.humans.answers import Rejected
    from captchalab.humans.pool import StudySettings, open_study
    from captchalab.humans.records import load_answers

    generate_dataset(GenerationSpec("clean", 6, seed=1), tmp_path / "data")
    study = open_study(tmp_path / "study", [tmp_path / "data"], StudySettings(per_person=4, practice=0, attention=0))
    person = study.start()
    first = study.next_item(person.id)
    study.answer(person.id, first.token, first.item.truth, answer_id="a-answer-one")
    served = study.next_item(person.id)
    written = next((tmp_path / "study" / "answers").glob("*.jsonl")).stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (written + 40, hard))  # the disk fills mid-line
    try:
        with pytest.raises(Rejected, match="could not be saved") as refused:
            study.answer(person.id, served.token, served.item.truth, answer_id="a-answer-two")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert refused.value.status == 503
    # room again: the page sends the same answer, which is saved once, after the torn line
    study.answer(person.id, served.token, served.item.truth, answer_id="a-answer-two")
    answers, skipped = load_answers(tmp_path / "study")
    assert [a["answer_id"] for a in answers] == ["a-answer-one", "a-answer-two"] and skipped == {"malformed": 1}
    assert all(a["correct"] for a in answers)
