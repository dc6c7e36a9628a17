import re

import cv2
import numpy as np
import pytest

from captchalab.model import load_model
from captchalab.visualize import activations, render_all, similarity
from conftest import assert_one_line_error, font_digits, run_cli

LAYER_FILES = ["input.png"] + [f"conv{i}.png" for i in range(1, 7)] + ["fc1.png", "fc2.png"]


def test_activation_shapes(tiny_model_path):
    acts = activations(load_model(tiny_model_path), font_digits(1)[0][0])
    shapes = {name: a.shape for name, a in acts.items()}
    assert shapes == {
        "input": (28, 28),
        "conv1": (24, 24, 20),
        "conv2": (20, 20, 20),
        "conv3": (16, 16, 50),
        "conv4": (12, 12, 50),
        "conv5": (8, 8, 50),
        "conv6": (4, 4, 50),
        "fc1": (500,),
        "fc2": (10,),
    }
    assert abs(acts["fc2"].sum() - 1) < 1e-4 and (acts["conv3"] >= 0).all()


def test_similarity_is_one_for_the_same_input_and_lower_for_another(tiny_model_path):
    model = load_model(tiny_model_path)
    digits, labels = font_digits(20, seed=3)
    a = digits[0]
    b = digits[int(np.flatnonzero(labels != labels[0])[0])]
    same = similarity(activations(model, a), activations(model, a))
    assert all(abs(v - 1) < 1e-5 for v in same.values())
    other = similarity(activations(model, a), activations(model, b))
    assert list(other) == ["input", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2"]
    assert other["input"] < 0.99 and all(-1 <= v <= 1 for v in other.values())


def test_full_render_with_comparison(tmp_path, tiny_model_path):
    digits, _ = font_digits(2, seed=4)
    out = tmp_path / "v"
    out.mkdir()
    summary = render_all(load_model(tiny_model_path), digits[0], out, "a", digits[1], "b")
    files = sorted(p.name for p in out.iterdir())
    expected = (
        LAYER_FILES
        + ["kernels_conv1.png", "kernels_deep.png", "similarity.png", "index.html"]
        + [f"compare_{f}" for f in LAYER_FILES]
    )
    assert files == sorted(expected)
    conv1 = cv2.imread(str(out / "conv1.png"))
    assert conv1.shape[0] > 200 and conv1.shape[1] > 300  # upscaled, readable tiles
    assert summary["most_apart"] in [f"conv{i}" for i in range(1, 7)] + ["fc1"]
    page = (out / "index.html").read_text()
    assert "http" not in page
    for src in re.findall(r"src='([^']+)'", page):
        assert (out / src).is_file()
    order = [page.index(f"<h2>{n} ") for n in ["input", "conv1", "conv3", "conv6", "fc1", "fc2"]]
    assert order == sorted(order)
    for shape in ("24x24x20", "4x4x50", "(500)", "(10)"):
        assert shape in page


def test_cli_with_a_captcha_image_and_a_char(tmp_path, tiny_model_path):
    from captchalab import render

    masks = [render.glyph(c, 0, 44) for c in "2749"]
    captcha = render.compose(masks, [(0, 0, 0)] * 4, np.random.default_rng(0), 64, render.plain(255))
    cv2.imwrite(str(tmp_path / "c.png"), captcha.image)
    result = run_cli(
        "visualize", "--model", tiny_model_path, "--image", tmp_path / "c.png", "--char", "2", "--out", tmp_path / "v"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "v" / "index.html").is_file() and (tmp_path / "v" / "conv6.png").is_file()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--mnist-index", "100000"], "out of range"),
        (["--image", "missing.png"], "cannot read"),
        (["--image", "c.png", "--char", "9"], "out of range"),
        (["--mnist-index", "1", "--image", "c.png"], "exactly one"),
    ],
)
def test_cli_errors_leave_nothing(tmp_path, tiny_model_path, mnist_dir, args, fragment):
    cv2.imwrite(str(tmp_path / "c.png"), np.full((40, 100, 3), 255, np.uint8))
    result = run_cli(
        "visualize", "--model", tiny_model_path, "--data", mnist_dir, *args, "--out", tmp_path / "v", cwd=tmp_path
    )
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "v").exists()


def test_model_errors(tmp_path, mnist_dir):
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 truncated zip")
    result = run_cli(
        "visualize",
        "--model",
        tmp_path / "bad.keras",
        "--data",
        mnist_dir,
        "--mnist-index",
        "1",
        "--out",
        tmp_path / "v",
    )
    assert_one_line_error(result, "not a loadable")
    result = run_cli(
        "visualize",
        "--model",
        tmp_path / "none.keras",
        "--data",
        mnist_dir,
        "--mnist-index",
        "1",
        "--out",
        tmp_path / "v",
    )
    assert_one_line_error(result, "does not exist")
    assert not (tmp_path / "v").exists()
