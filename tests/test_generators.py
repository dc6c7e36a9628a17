import json
import textwrap

import numpy as np
import pytest

from captchalab.data.dataset import GenerationSpec, generate_dataset, render_many
from captchalab.plugins import get_generator
from conftest import assert_one_line_error, run_cli

BUILTIN = ["clean", "distorted", "noisy", "overlap", "handwritten", "imagecaptcha"]


@pytest.fixture(autouse=True)
def mnist_env(monkeypatch, mnist_dir):
    monkeypatch.setenv("CAPTCHALAB_MNIST", str(mnist_dir))  # for the handwritten style


@pytest.mark.parametrize("style", BUILTIN)
@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_each_style_renders_boxes_inside_the_image(style, strength):
    spec = GenerationSpec(style, 6, 3, 6, seed=5, strength=strength)
    for _, (text, image, boxes, *_) in render_many(spec):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert len(boxes) == len(text) and 3 <= len(text) <= 6
        h, w = image.shape[:2]
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        # boxes go left to right, so they are in reading order
        assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)


def test_strength_makes_a_difference():
    easy = get_generator("distorted").resolve(0.0)
    hard = get_generator("distorted").resolve(1.0)
    assert hard["rotate"] > easy["rotate"] and hard["wave"] > easy["wave"]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("style", ["distorted", "imagecaptcha"])
def test_same_seed_gives_identical_bytes_with_1_and_2_workers(tmp_path, style):
    spec = GenerationSpec(style, 40, 4, 5, seed=11, strength=0.7)
    generate_dataset(spec, tmp_path / "one", workers=1)
    generate_dataset(spec, tmp_path / "two", workers=2)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert one == two
    assert len([n for n in one if n.endswith(".png")]) == 40
    other = GenerationSpec(style, 40, 4, 5, seed=12, strength=0.7)
    generate_dataset(other, tmp_path / "three", workers=1)
    assert _files(tmp_path / "three")["labels.csv"] != one["labels.csv"]


def test_dataset_folder_contents(tmp_path):
    result = run_cli(
        "generate",
        "--style",
        "clean",
        "--count",
        "5",
        "--length",
        "3-5",
        "--seed",
        "3",
        "--param",
        "spacing=1.8",
        "--out",
        tmp_path / "ds",
        "--preview",
    )
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "ds"
    lines = (folder / "labels.csv").read_text().splitlines()
    assert lines[0] == "filename,text" and len(lines) == 6
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["generator"] == "clean" and manifest["seed"] == 3 and manifest["count"] == 5
    assert manifest["parameters"]["spacing"] == 1.8 and manifest["length"] == [3, 5]
    assert "numpy" in manifest["versions"]
    boxes = json.loads((folder / "boxes.json").read_text())
    for line in lines[1:]:
        name, text = line.split(",")
        assert len(boxes[name]) == len(text)
    assert (folder / "preview.png").is_file()
    again = run_cli("generate", "--style", "clean", "--count", "5", "--out", folder)
    assert_one_line_error(again, "--force")


PLUGIN = textwrap.dedent("""
    from captchalab import render as r
    from captchalab.generator import Generator, Param, register

    @register
    class Stripes(Generator):
        name = "stripes_test"
        description = "Digits over stripes (test plugin)."
        params = (Param("gap", int, 6, 2, 20, "stripe gap"),)

        def at_strength(self, s):
            return {"gap": round(12 - 8 * s)}

        def render(self, text, rng, p):
            masks = [r.glyph(c, 0, 40) for c in text]
            out = r.compose(masks, [(0, 0, 0)] * len(text), rng, 64, r.plain(255))
            out.image[::p["gap"]] = 128
            return out
""")


def test_plugin_found_through_option_and_environment(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "stripes.py").write_text(PLUGIN)
    listed = run_cli("generators", "--plugins", folder)
    assert listed.returncode == 0 and "stripes_test" in listed.stdout and "gap" in listed.stdout
    made = run_cli(
        "generate",
        "--style",
        "stripes_test",
        "--count",
        "3",
        "--out",
        tmp_path / "a",
        env={"CAPTCHALAB_PLUGINS": str(folder)},
    )
    assert made.returncode == 0, made.stderr
    assert len(list((tmp_path / "a").glob("*.png"))) == 3


def test_broken_plugins_are_reported_and_the_rest_work(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "syntax.py").write_text("def broken(:\n")
    (folder / "nofields.py").write_text(
        "from captchalab.generator import Generator, register\n@register\nclass X(Generator):\n    pass\n"
    )
    (folder / "raises.py").write_text(
        PLUGIN.replace("stripes_test", "raises_test").replace(
            "masks = [", "raise RuntimeError('boom')\n            masks = ["
        )
    )
    listed = run_cli("generators", "--plugins", folder)
    assert listed.returncode == 0
    broken = "\n".join(line for line in listed.stdout.splitlines() if line.startswith("broken plugin (skipped):"))
    assert "syntax.py" in broken and "nofields.py" in broken
    for style in BUILTIN:
        assert f"{style}:" in listed.stdout
    failed = run_cli("generate", "--style", "raises_test", "--count", "2", "--plugins", folder, "--out", tmp_path / "r")
    assert_one_line_error(failed, "raises.py")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--style", "nope"], "known styles"),
        (["--style", "clean", "--param", "wobble=3"], "no parameter 'wobble'"),
        (["--style", "clean", "--param", "spacing=abc"], "not a float"),
        (["--style", "clean", "--param", "spacing"], "name=value"),
        (["--style", "clean", "--strength", "1.5"], "[0, 1]"),
        (["--style", "clean", "--count", "0"], "--count"),
        (["--style", "clean", "--length", "12"], "--length"),
        (["--style", "clean", "--length", "5-3"], "--length"),
        (["--style", "handwritten", "--charset", "12ab"], "cannot draw 'ab' (it draws digits only)"),
        (["--style", "clean", "--charset", "digitz"], "unknown charset name"),
        (["--style", "clean", "--charset", "aab"], "repeats"),
    ],
)
def test_generate_errors(tmp_path, args, fragment):
    result = run_cli("generate", *args, "--out", tmp_path / "out")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("generate", "--style", "clean", "--count", "2", "--out", blocker / "ds")
    assert_one_line_error(result, "cannot write")


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, theirs, ...), from /proc."""
    import os

    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # it ended while we looked
    below, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - below
        below |= frontier
    return below


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="reads the process tree from /proc")
def test_sigterm_stops_a_run_like_ctrl_c_and_leaves_no_workers_or_half_written_output(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "big"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "captchalab",
            "generate",
            "--style",
            "grid4",
            "--count",
            "20000",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, workers = time.time() + 120, set()
    while time.time() < deadline and len(workers) < 3:  # the fork server and its two workers
        time.sleep(0.2)
        workers = descendants(process.pid)
    assert len(workers) >= 3, "the worker pool never started"
    time.sleep(1)
    process.send_signal(signal.SIGTERM)  # what kill and batch schedulers send
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1] == "error: interrupted", stderr
    assert not out.exists() and not list(tmp_path.glob(".big.*"))  # nothing half-written
    deadline = time.time() + 20
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if os.path.exists(f"/proc/{p}")]
    assert not left, f"worker processes {left} outlived the command"
