import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]

# Hypothesis keeps its caches in a temporary folder and no example database (the fuzz tests are
# derandomized): by default it writes .hypothesis/ into the repository
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="captchalab-hypothesis-"))
hypothesis_settings.register_profile("captchalab", database=None)
hypothesis_settings.load_profile("captchalab")


def font_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n real 28x28 digit images (rendered from the bundled fonts, MNIST-normalised)."""
    from captchalab import render
    from captchalab.attackers.segmenter import mnist_crop

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.empty((n, 28, 28), np.uint8)
    for i, label in enumerate(labels):
        mask = render.glyph(str(label), int(rng.integers(len(render.font_paths()))), 40)
        mask = render.rotate_scale(mask, rng.uniform(-10, 10))
        images[i] = mnist_crop(mask > 100)
    return images, labels


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = True) -> Path:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def in_temporary_folder(tmp_path, monkeypatch):
    """Every test runs in its own empty working folder: default outputs (models/, results/, data/)
    land there, never in the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A small MNIST-format folder (font digits) written as real IDX .gz files."""
    folder = tmp_path_factory.mktemp("mnist")
    x, y = font_digits(400, seed=1)
    xt, yt = font_digits(100, seed=2)
    write_idx(folder / "train-images-idx3-ubyte", x, 2051)
    write_idx(folder / "train-labels-idx1-ubyte", y, 2049)
    write_idx(folder / "t10k-images-idx3-ubyte", xt, 2051)
    write_idx(folder / "t10k-labels-idx1-ubyte", yt, 2049)
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, mnist_dir) -> Path:
    """A model trained for one short epoch on the tiny font-digit MNIST folder."""
    from captchalab.data.mnist import load_mnist
    from captchalab.train import TrainConfig, train_mnist

    out = tmp_path_factory.mktemp("models") / "tiny.keras"
    train_mnist(load_mnist(mnist_dir), out, TrainConfig(epochs=1, validation_count=50))
    return out


def run_cli(*args, env=None, cwd=None, timeout=300):
    """Run the real `captchalab` command in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "captchalab", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_one_line_error(result, fragment: str = ""):
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert fragment.lower() in errors[0].lower(), errors[0]
