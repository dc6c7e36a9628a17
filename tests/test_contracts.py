"""Plugin contracts as an outside author meets them: hyper-parameters set wherever an attacker is
named, one-line errors naming the plugin, broken plugins listed, contracts checked when a plugin
registers, the shared training loop for a declared model and loss, and captchalab.testing."""

import json
import shutil

import pytest

from conftest import REPO, assert_one_line_error, run_cli

OUTSIDE = REPO / "tests" / "outside"


@pytest.fixture()
def plugins(tmp_path):
    folder = tmp_path / "plugins"
    shutil.copytree(OUTSIDE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def labelled_folder(tmp_path, texts):
    """A dataset folder of real PNGs with the given labels."""
    from captchalab.data.dataset import GenerationSpec, generate_dataset

    folder = tmp_path / "ds"
    generate_dataset(GenerationSpec("clean", len(texts), seed=3), folder)
    (folder / "labels.csv").write_text(
        "filename,text\n"
        + "".join(f"{name},{text}\n" for name, text in zip(sorted(p.name for p in folder.glob("*.png")), texts))
    )
    return folder


def test_a_read_only_attackers_hyperparameters_reach_it_from_attack(tmp_path, plugins):
    data = labelled_folder(tmp_path, ["1111", "1111", "1111", "2222"])
    for spec, expected in (("constant:text=1111", 0.75), ("constant:text=2222", 0.25), ("constant", 0.0)):
        out = tmp_path / spec.replace(":", "-").replace("=", "-")
        done = run_cli(
            "attack", "--attacker", spec, "--dataset", data, "--plugins", plugins, "--workers", "0", "--out", out
        )
        assert done.returncode == 0, done.stderr
        report = json.loads((out / "report.json").read_text())
        assert report["captcha_accuracy"] == expected
        assert list(report["per_attacker"]) == ["constant"]


def test_hyperparameters_reach_an_attacker_in_a_sweep_and_a_study(tmp_path, plugins, tiny_model_path):
    sweep = run_cli(
        "sweep",
        "--model",
        tiny_model_path,
        "--attacker",
        "constant:text=1234",
        "--style",
        "clean",
        "--strength",
        "0:1:2",
        "--count",
        "3",
        "--workers",
        "0",
        "--plugins",
        plugins,
        "--out",
        tmp_path / "sweep",
    )
    assert sweep.returncode == 0, sweep.stderr
    steps = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep" / "steps").glob("step-*.json"))]
    assert all(guess == "1234" for s in steps for _, guess in s["per_attacker"]["constant:text=1234"]["misread"])
    study = tmp_path / "study.toml"
    study.write_text(
        f'[study]\nname = "s"\ntest_count = 3\nplugins = ["{plugins}"]\n[grid]\nstyle = ["clean"]\n'
        '[[attacker]]\nattacker = "constant:text=4321"\n'
        '[[attacker]]\nlabel = "table"\nattacker = "constant"\nhparams = {text = "9999"}\n'
    )
    run = run_cli("run", study, "--out", tmp_path / "study")
    assert run.returncode == 0, run.stderr
    cell = json.loads(next((tmp_path / "study" / "cells").glob("*.json")).read_text())
    guesses = {label: {g for _, g in r["misread"]} for label, r in cell["per_attacker"].items()}
    assert guesses == {"constant:text=4321": {"4321"}, "table": {"9999"}}
    bad = tmp_path / "bad.toml"
    bad.write_text(study.read_text().replace("text=4321", "txt=4321"))
    assert_one_line_error(run_cli("run", bad), "no hyper-parameter 'txt'")


def test_a_plugin_failure_is_one_line_naming_the_plugin(tmp_path, plugins):
    data = labelled_folder(tmp_path, ["1111"])
    args = [
        "attack",
        "--attacker",
        "constant:fail=true",
        "--dataset",
        data,
        "--plugins",
        plugins,
        "--workers",
        "0",
        "--out",
        tmp_path / "r",
    ]
    failed = run_cli(*args)
    assert_one_line_error(failed, "attacker 'constant'")
    assert "constant.py" in failed.stderr and "ModuleNotFoundError" in failed.stderr
    verbose = run_cli("--verbose", *args)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert not (tmp_path / "r").exists()


def test_a_declared_model_and_loss_train_through_the_shared_loop(tmp_path, plugins):
    out = tmp_path / "slicer.keras"
    made = run_cli(
        "train",
        "captcha",
        "--attacker",
        "slicer:epochs=2",
        "--style",
        "clean",
        "--count",
        "60",
        "--plugins",
        plugins,
        "--workers",
        "0",
        "--out",
        out,
    )
    assert made.returncode == 0, made.stderr
    assert "declares no base model: training from scratch" in made.stderr
    assert made.stderr.count("epoch ") == 2  # the shared loop's epoch lines
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["attacker"] == "slicer" and info["hyperparameters"]["epochs"] == 2
    assert len(info["history"]) == 2 and info["initialised_from"] == "scratch"
    attacked = run_cli(
        "attack",
        "--model",
        out,
        "--style",
        "clean",
        "--count",
        "10",
        "--plugins",
        plugins,
        "--workers",
        "0",
        "--out",
        tmp_path / "r",
    )
    assert attacked.returncode == 0, attacked.stderr
    # the plugin file breaks: its model now names the broken file and why
    (plugins / "slicer.py").write_text("import pytesseract_is_not_installed\n" + (plugins / "slicer.py").read_text())
    broken = run_cli(
        "attack",
        "--model",
        out,
        "--style",
        "clean",
        "--count",
        "10",
        "--plugins",
        plugins,
        "--workers",
        "0",
        "--out",
        tmp_path / "r2",
    )
    assert_one_line_error(broken, "which is not installed; plugins that failed to load")
    assert "slicer.py" in broken.stderr and "pytesseract_is_not_installed" in broken.stderr
    listed = run_cli("attackers", "--plugins", plugins)
    assert listed.returncode == 0
    assert "broken plugin (skipped):" in listed.stdout and "slicer.py" in listed.stdout


def test_contracts_are_checked_when_a_plugin_registers():
    from captchalab.attackers import Attacker, register_attacker
    from captchalab.generator import Generator, Param, PluginError, register

    with pytest.raises(PluginError, match="differentiable but lacks adversarial_objective"):

        @register_attacker
        class Half(Attacker):
            name, description, trainable, differentiable = "half", "x", False, True

            def read_prepared(self, batch):
                return []

    with pytest.raises(PluginError, match="neither fit"):

        @register_attacker
        class NoLoss(Attacker):
            name, description = "noloss", "x"

            def read_prepared(self, batch):
                return []

            def build(self, seed):
                return None

    with pytest.raises(PluginError, match="returns noise, not declared"):

        @register
        class Loose(Generator):
            name, description = "loose", "x"
            params = (Param("lines", int, 1, 0, 5),)

            def at_strength(self, s):
                return {"lines": 2, "noise": s}

            def render(self, text, rng, p):
                raise NotImplementedError

    with pytest.raises(PluginError, match="outside"):

        @register
        class OutOfRange(Generator):
            name, description = "outofrange", "x"
            params = (Param("lines", int, 1, 0, 5),)

            def at_strength(self, s):
                return {"lines": 10}

            def render(self, text, rng, p):
                raise NotImplementedError


def test_check_style_passes_the_builtins_and_names_what_a_broken_style_does(monkeypatch, mnist_dir):
    monkeypatch.setenv("CAPTCHALAB_MNIST", str(mnist_dir))  # `handwritten` draws MNIST digits
    from captchalab import render as r
    from captchalab.generator import Generator, Rendered
    from captchalab.plugins import load_generators
    from captchalab.testing import ContractError, check_style

    for style in load_generators().values():
        check_style(type(style), count=2)

    class WrongBoxes(Generator):
        name, description = "wrongboxes", "x"

        def render(self, text, rng, p):
            out = r.compose([r.glyph(c, 0, 30) for c in text], [(0, 0, 0)] * len(text), rng, 40, r.plain(255))
            return Rendered(out.image, out.boxes[:-1] + [(0, 0, 10_000, 5)])

    with pytest.raises(ContractError, match="not inside"):
        check_style(WrongBoxes)

    class Unseeded(Generator):
        name, description = "unseeded", "x"

        def render(self, text, rng, p):
            import numpy as np

            out = r.compose([r.glyph(c, 0, 30) for c in text], [(0, 0, 0)] * len(text), rng, 40, r.plain(255))
            out.image[0, 0] = np.random.randint(0, 255)
            return out

    with pytest.raises(ContractError, match="draw randomness only from `rng`"):
        check_style(Unseeded)


def test_check_attacker_trains_saves_loads_and_reads(plugins):
    from captchalab.attackers import Attacker, Reading
    from captchalab.plugins import get_attacker, load_plugins
    from captchalab.testing import ContractError, check_attacker

    load_plugins([plugins])
    check_attacker(get_attacker("slicer"), hparams={"epochs": 1})
    check_attacker(get_attacker("ctc"), hparams={"filters": 8, "rnn_units": 16})
    check_attacker(get_attacker("tilecnn"))  # image grids: the same checks through the grid kind

    class Miscounts(Attacker):
        name, description, trainable = "miscounts", "x", False

        def read_prepared(self, batch):
            return [Reading("12", [0.5]) for _ in batch[1:]]

    with pytest.raises(ContractError, match="one Reading per image"):
        check_attacker(Miscounts)
