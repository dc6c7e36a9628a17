"""Training that knows when it is done: the stopping rule on scripted validation curves, the
verdict in the model's JSON, and the flag reaching reports, study cells and fine-tuned children."""

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


def tiny_run(
    tmp_path, curve, train_accuracy=1.0, budget=10_000, resume=False, validation_count=500, name="ckpt", ceiling=None
):
    """The real loop on a real (tiny) Keras model, with a scripted validation curve."""
    import keras
    from captchalab.training import Run, Stopping, choose_optimizer, train_until_converged

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    stopping = Stopping(budget, patience=2, reductions=2, ceiling=ceiling)
    optimizer = choose_optimizer(1e-3, stopping, len(x), 20, validation_count)
    import tensorflow as tf

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(batch) ** 2)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss, 0.0

    scores = iter(curve)
    run = Run(
        model,
        optimizer,
        seed=0,
        train_count=len(x),
        epoch_batches=lambda rng: ((x[i : i + 20],) for i in range(0, 100, 20)),
        step=step,
        validate=lambda: next(scores),
        checkpoint=tmp_path / name,
        config={"run": 1},
        resume=resume,
    )
    score = train_accuracy if callable(train_accuracy) else lambda: train_accuracy
    return train_until_converged(run, stopping, validation_count, train_score=score)


def test_a_plateau_cuts_the_rate_then_ends_the_run_before_its_budget(tmp_path):
    state = tiny_run(tmp_path, [0.5, 0.7, 0.8, 0.8, 0.79, 0.8, 0.8, 0.81, 0.81, 0.8, 0.8, 0.8] + [0.8] * 20)
    verdict = state["convergence"]
    assert verdict["converged"] and verdict["stopped"] == "plateau" and verdict["rate_cuts"] == 2
    assert state["epoch"] < 100  # the budget (10,000 examples of 100) allowed 100 epochs
    assert state["best_val_accuracy"] == 0.81
    scales = [r["learning_rate_scale"] for r in state["history"]]
    assert scales[0] == 1 and min(scales) == pytest.approx(0.09)


def test_a_run_still_improving_at_its_budget_is_flagged(tmp_path):
    state = tiny_run(tmp_path, [i / 100 for i in range(1, 200)], budget=1_000)
    verdict = state["convergence"]
    assert not verdict["converged"] and verdict["stopped"] == "budget" and state["epoch"] == 10
    assert "still improving" in verdict["reasons"][0]
    assert verdict["examples_seen"] == 1_000 and len(verdict["validation_curve"]) == 10


def test_an_underfitting_run_is_flagged_even_on_a_plateau(tmp_path):
    state = tiny_run(tmp_path, [0.09] * 40, train_accuracy=0.12)
    verdict = state["convergence"]
    assert verdict["stopped"] == "plateau" and verdict["underfit"] and not verdict["converged"]
    assert "underfitting" in verdict["reasons"][-1]


def test_a_small_validation_set_lets_the_budget_decide_and_says_so(tmp_path):
    state = tiny_run(tmp_path, [0.5] * 40, budget=1_500, validation_count=40)
    verdict = state["convergence"]
    assert state["epoch"] == 15 and verdict["stopped"] == "budget" and not verdict["converged"]
    assert "only 40 validation CAPTCHAs" in verdict["reasons"][0]
    # nor pick the weights: the last ones are kept, not an early lucky score
    state = tiny_run(tmp_path, [0.5, 1.0] + [0.9] * 40, budget=1_500, validation_count=40, name="last")
    assert state["best_epoch"] == 15 and state["best_val_accuracy"] == 0.9


def test_an_interrupted_run_resumes_to_the_same_verdict(tmp_path):
    curve = [0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8] + [0.8] * 20
    whole = tiny_run(tmp_path, curve, name="a")

    class Interrupt(Exception):
        pass

    def cut_short():
        for k, value in enumerate(curve):
            if k == 4:
                raise Interrupt
            yield value

    with pytest.raises(Interrupt):
        tiny_run(tmp_path, cut_short(), name="b")
    resumed = tiny_run(tmp_path, curve[4:], name="b", resume=True)
    assert resumed["convergence"] == whole["convergence"]
    assert [r["val_accuracy"] for r in resumed["history"]] == [r["val_accuracy"] for r in whole["history"]]


def test_wilson_intervals():
    from captchalab.score import wilson

    assert wilson(0, 10) == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert wilson(5, 10) == pytest.approx([0.2366, 0.7634], abs=1e-4)
    low, high = wilson(990, 1000)
    assert low < 0.99 < high and high - low < 0.02
    assert wilson(0, 0) is None


def test_bad_budgets_are_one_line_errors(tmp_path):
    for option, value in (("--budget", "0"), ("--budget", "-5"), ("--time-limit", "0")):
        result = run_cli(
            "train", "captcha", "--style", "clean", "--count", "10", option, value, "--out", tmp_path / "m.keras"
        )
        assert_one_line_error(result, f"{option} must be positive")
        assert not (tmp_path / "m.keras").exists()


@pytest.fixture(scope="module")
def unconverged_ctc(tmp_path_factory):
    """A ctc trained on a budget far too small: the model records that it had not converged."""
    folder = tmp_path_factory.mktemp("unconverged")
    out = folder / "weak.keras"
    done = run_cli(
        "train",
        "captcha",
        "--attacker",
        "ctc:filters=8,rnn_units=16",
        "--style",
        "clean",
        "--count",
        "40",
        "--budget",
        "72",
        "--from",
        "scratch",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    assert "NOT converged" in done.stderr
    return out


def test_the_flag_reaches_a_report_a_study_cell_and_a_fine_tuned_child(tmp_path, unconverged_ctc):
    info = json.loads(unconverged_ctc.with_suffix(".json").read_text())
    assert info["convergence"]["converged"] is False and info["convergence"]["reasons"]
    attacked = run_cli(
        "attack",
        "--model",
        unconverged_ctc,
        "--style",
        "clean",
        "--count",
        "5",
        "--workers",
        "0",
        "--out",
        tmp_path / "r",
    )
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    state = report["per_attacker"]["weak (ctc)"]["state"]
    assert state["lower_bound"] and not state["converged"]
    assert len(report["captcha_accuracy_ci95"]) == 2
    assert "lower bound" in (tmp_path / "r" / "report.md").read_text()
    study = tmp_path / "s.toml"
    study.write_text(
        f'[study]\nname = "s"\ntest_count = 3\nconverged_only = true\n[grid]\nstyle = ["clean"]\n'
        f'[[attacker]]\nmodel = "{unconverged_ctc}"\n'
    )
    ran = run_cli("run", study, "--out", tmp_path / "study")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads((tmp_path / "study" / "cells.json").read_text())
    assert rows[0]["lower_bound"] is True and rows[0]["status"] == "not converged"
    child = tmp_path / "child.keras"
    # (the parent's own hyper-parameters: of another architecture it would take no layer, and start
    # from scratch); other CAPTCHAs (seed 2) than the parent's: a fine-tune, which carries the flag on
    tuned = run_cli(
        "train",
        "captcha",
        "--attacker",
        "ctc:filters=8,rnn_units=16",
        "--style",
        "clean",
        "--count",
        "40",
        "--seed",
        "2",
        "--budget",
        "72",
        "--from",
        unconverged_ctc,
        "--workers",
        "0",
        "--out",
        child,
    )
    assert tuned.returncode == 0, tuned.stderr
    reasons = json.loads(child.with_suffix(".json").read_text())["convergence"]["reasons"]
    assert any("started from weak.keras, which had not converged" in r for r in reasons)
    # the parent's own CAPTCHAs: the run goes on where the parent's stopped, and its own verdict decides
    extended = run_cli(
        "train",
        "captcha",
        "--attacker",
        "ctc:filters=8,rnn_units=16",
        "--style",
        "clean",
        "--count",
        "40",
        "--budget",
        "72",
        "--from",
        unconverged_ctc,
        "--workers",
        "0",
        "--out",
        tmp_path / "on.keras",
    )
    assert extended.returncode == 0, extended.stderr
    verdict = json.loads((tmp_path / "on.json").read_text())["convergence"]
    assert verdict["extends"] == "weak.keras" and not any("weak.keras" in r for r in verdict["reasons"])
    assert "trained on from weak.keras on the same CAPTCHAs" in extended.stderr


def recording_slicer(tmp_path):
    """The outside slicer plugin (shared loop), declaring fresh_examples and recording the texts
    of every training set the loop builds."""
    import shutil
    from pathlib import Path
    from captchalab.attackers.base import get_attacker

    folder = tmp_path / "plugins"
    shutil.copytree(Path(__file__).parent / "outside", folder, ignore=shutil.ignore_patterns("__pycache__"))

    class Recording(get_attacker("slicer", [str(folder)])):
        fresh_examples = True
        seen: list = []

        def targets(self, texts):
            self.seen.append(tuple(texts))
            return super().targets(texts)

    return Recording


def test_fresh_captchas_are_drawn_every_epoch_the_same_way_every_run(tmp_path):
    from captchalab.attackers.base import TrainSettings
    from captchalab.data.dataset import make_source
    from captchalab.train import train_attacker

    runs = []
    for run in range(2):
        Recording = recording_slicer(tmp_path / str(run))
        source = make_source("clean", None, 40, "4", 1, 0.5, [], (), None)
        info = train_attacker(
            Recording("0123456789", {"epochs": 3}),
            source,
            tmp_path / f"{run}.keras",
            TrainSettings(seed=1),
            workers=0,
            fresh=True,
        )
        assert info["fresh_every_epoch"] is True and len(info["history"]) == 3
        runs.append(Recording.seen)
    first, *epochs = runs[0]
    assert len(epochs) == 3 and len(set(epochs)) == 3 and first not in epochs  # a new draw each epoch
    assert all(len(texts) == len(first) == 36 for texts in epochs)  # as many as the training part
    assert runs[0] == runs[1]  # seeded: the same draws again


def test_fresh_captchas_need_a_style_and_an_attacker_that_declares_them(tmp_path):
    from captchalab.data.dataset import GenerationSpec, generate_dataset

    generate_dataset(GenerationSpec("clean", 4, seed=3), tmp_path / "ds")
    common = ["--from", "scratch", "--workers", "0", "--fresh"]
    assert_one_line_error(
        run_cli(
            "train",
            "captcha",
            "--attacker",
            "ctc",
            "--dataset",
            tmp_path / "ds",
            *common,
            "--out",
            tmp_path / "a.keras",
        ),
        "it needs --style",
    )
    assert_one_line_error(
        run_cli(
            "train", "captcha", "--attacker", "segment", "--style", "clean", *common, "--out", tmp_path / "b.keras"
        ),
        "fresh_examples is not declared",
    )
    assert not list(tmp_path.glob("*.keras"))


def test_a_plateau_waits_while_an_underfitting_reader_still_learns_its_training_captchas(tmp_path):
    """The validation score stalls from epoch 2; the training score (read at each plateau) climbs a
    point or more four times, then stops: no cut until then, then the usual two cuts and the end."""
    climbing = iter([0.5, 0.6, 0.7, 0.75, 0.755] + [0.755] * 50)
    state = tiny_run(tmp_path, [0.5, 0.6] + [0.6] * 60, train_accuracy=lambda: next(climbing))
    scales = [r["learning_rate_scale"] for r in state["history"]]
    assert scales.index(pytest.approx(0.3)) >= 2 + 2 * 4  # four plateaus of patience 2 went by uncut
    assert state["convergence"]["stopped"] == "plateau" and state["convergence"]["rate_cuts"] == 2
    assert state["convergence"]["underfit"] and not state["convergence"]["converged"]


def test_a_small_set_run_goes_on_while_it_underfits_and_still_learns(tmp_path):
    from captchalab.attackers.base import TrainSettings
    from captchalab.training.stopping import stopping_for

    # the training accuracy at the end of each pass of the budget (and once more for the verdict)
    rising = iter([0.2, 0.4, 0.6, 0.7, 0.705, 0.705])
    state = tiny_run(tmp_path, [0.3] * 100, lambda: next(rising), budget=500, validation_count=40, ceiling=5_000)
    verdict = state["convergence"]
    assert state["epoch"] == 25 and state["cycles"] == 5 and not verdict["converged"]  # stopped: +0.5 points only
    assert "5 times over: its training accuracy still rose" in verdict["reasons"][0] and verdict["underfit"]
    # one that fits its training CAPTCHAs stops at its budget; one always rising, at the ceiling
    assert tiny_run(tmp_path, [0.3] * 100, 0.95, budget=500, validation_count=40, ceiling=5_000, name="f")["epoch"] == 5
    climbing = iter(np.linspace(0.1, 0.8, 20))
    state = tiny_run(
        tmp_path, [0.3] * 100, lambda: next(climbing), budget=500, validation_count=40, ceiling=2_000, name="c"
    )
    assert state["epoch"] == 20
    # the ceiling is the attacker's whole budget, for the small-set rule only
    small = stopping_for(TrainSettings(), {}, 900, 100, budget=600_000, small_set_budget=40_500)
    assert (small.budget, small.ceiling) == (40_500, 600_000)
    assert stopping_for(TrainSettings(budget=9_000), {}, 900, 100, 600_000, 40_500).ceiling is None
    assert stopping_for(TrainSettings(), {}, 9_000, 1_000, 600_000, 40_500).ceiling is None
