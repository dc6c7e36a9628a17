import json

import numpy as np
import pytest

from captchalab.data.mnist import load_mnist
from captchalab.model import load_model
from captchalab.train import TrainConfig, checkpoint_dir, train_mnist
from conftest import assert_one_line_error, run_cli


def test_tiny_training_writes_a_loadable_model_and_its_json(tiny_model_path, mnist_dir):
    model = load_model(tiny_model_path)
    assert model.count_params() == 628_750
    info = json.loads(tiny_model_path.with_suffix(".json").read_text())
    for key in (
        "test_accuracy",
        "per_class_accuracy",
        "confusion_matrix",
        "epochs",
        "batch_size",
        "seed",
        "wall_seconds",
        "train_images_per_second",
        "manifest",
    ):
        assert key in info
    assert np.asarray(info["confusion_matrix"]).sum() == 100
    assert info["manifest"]["data_hashes"]
    assert "tensorflow" in " ".join(info["manifest"]["versions"])
    assert not checkpoint_dir(tiny_model_path).exists()


class Interrupt(Exception):
    pass


def test_resume_continues_an_interrupted_run(tmp_path, mnist_dir):
    data = load_mnist(mnist_dir)
    out = tmp_path / "m.keras"
    config = TrainConfig(epochs=2, validation_count=50, patience=5)

    def stop_after_first(epoch, record):
        raise Interrupt()

    with pytest.raises(Interrupt):
        train_mnist(data, out, config, on_epoch=stop_after_first)
    assert not out.exists()  # nothing half-written: only the checkpoint
    state = json.loads((checkpoint_dir(out) / "state.json").read_text())
    assert state["epoch"] == 1
    seen = []
    info = train_mnist(data, out, config, resume=True, on_epoch=lambda e, r: seen.append(e))
    assert seen == [2]  # the first epoch was not redone
    assert info["epochs_run"] == 2 and len(info["history"]) == 2
    assert out.exists() and not checkpoint_dir(out).exists()


def test_resume_without_checkpoint_is_an_error(tmp_path, mnist_dir):
    result = run_cli("train", "mnist", "--data", mnist_dir, "--resume", "--out", tmp_path / "x.keras")
    assert_one_line_error(result, "nothing to resume")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--epochs", "0"], "--epochs"),
        (["--out", "model.h5"], ".keras"),
        (["--bogus"], "no such option"),
    ],
)
def test_cli_errors(tmp_path, mnist_dir, args, fragment):
    result = run_cli("train", "mnist", "--data", mnist_dir, *args, cwd=tmp_path)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "models").exists()


def test_unwritable_out(tmp_path, mnist_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("train", "mnist", "--data", mnist_dir, "--epochs", "1", "--out", blocker / "m.keras")
    assert_one_line_error(result, "cannot write")


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("train", "generate", "generators", "attack", "visualize", "sweep", "matrix", "quickstart"):
        assert command in result.stdout
