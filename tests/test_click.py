"""Click-in-order CAPTCHAs through the same house: the scorer on hand-made answers, challenges
byte-identical with any worker count (icons and Chinese text), ddddocr's detector off the shelf,
the trained clicknet end to end (train, attack, sweep), and bad input as one-line errors."""

import json
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_cli
from captchalab.generation.render import cjk_font_paths


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "manifest.json"}


def item(truth, guess):
    return SimpleNamespace(
        text=truth,
        question={"prompt": "", "count": 2, "size": [100, 100]},
        reading=SimpleNamespace(text=guess, details=None),
        skipped=False,
        name="x",
        error=None,
    )


def test_clicks_count_inside_their_target_box_in_order():
    from captchalab.kinds import get_kind
    from captchalab.score import score

    truth = "10 10 30 30;50 50 70 70"
    kind = get_kind("click")
    cases = {
        "20 20;60 60": True,  # inside both, in order
        "10 30;70 50": True,  # on the boxes' edges: inside
        "9 20;60 60": False,  # a pixel left of the first box
        "60 60;20 20": False,  # the right places, the wrong order
        "20 20": False,  # too few
        "20 20;60 60;90 90": False,  # too many
        "": False,
        "twenty;sixty": False,  # not clicks: a misread, never an error
    }
    for guess, passes in cases.items():
        assert kind.correct(truth, guess) is passes, guess
    result = score([item(truth, g) for g in cases], "", kind="click")
    assert result["captcha_accuracy"] == pytest.approx(2 / 8)
    # each target hit by its own click: 2, 2, the second, none, the first, the first two, none, none
    assert result["target_hit_rate"] == pytest.approx((2 + 2 + 1 + 0 + 1 + 2 + 0 + 0) / 16)
    assert result["order_errors"] == 2 and result["misses"] == 2  # both of "60 60;20 20"; "9 20" and "90 90"
    assert result["too_few_clicks"] == 2 and result["too_many_clicks"] == 1 and result["unparsable"] == 1
    assert result["mean_distance_px"] > 0


def test_a_person_s_clicks_are_checked_against_the_scene():
    from captchalab.kinds import get_kind

    kind, question = get_kind("click"), {"prompt": "", "count": 2, "size": [100, 80]}
    assert kind.page_answer([[10, 20], [30.4, 40]], question) == "10 20;30 40"
    for bad, why in (
        ([[10, 90]], "outside the 100x80 scene"),
        ([[1]], "[x, y]"),
        ("10 20", "list"),
        ([["a", 1]], "numbers"),
    ):
        with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")):
            kind.page_answer(bad, question)
    with pytest.raises(ValueError, match="outside"):
        kind.typed_answer("10 20;-1 5", question)
    assert kind.page_value("10 10 30 30;50 50 70 70", question) == [[20, 20], [60, 60]]


@pytest.mark.parametrize("style, chars", [("iconclick", None), ("textclick", "cjk")])
def test_click_challenges_are_byte_identical_with_any_worker_count(tmp_path, style, chars):
    if chars == "cjk" and not cjk_font_paths():
        pytest.skip("no CJK font installed (Debian fonts-noto-cjk)")
    extra = ["--param", f"chars={chars}"] if chars else []
    for workers in (1, 2):
        made = run_cli("generate", "--style", style, "--count", "40", "--seed", "3", "--workers", str(workers), *extra, "--out", tmp_path / f"w{workers}")  # fmt: skip
        assert made.returncode == 0, made.stderr
    assert files_of(tmp_path / "w1") == files_of(tmp_path / "w2")
    from captchalab.data.dataset import Source, read_dataset
    from captchalab.kinds import parse_boxes

    data = read_dataset(tmp_path / "w1")
    assert data.kind == "click" and (tmp_path / "w1" / "00000.strip.png").is_file()
    sample = Source(dataset=data).sample(0)
    height, width = sample.image.shape[:2]
    boxes = parse_boxes(sample.text)
    assert sample.question["count"] == len(boxes) == 3 and sample.question["size"] == [width, height]
    assert all(0 <= b[0] <= b[2] < width and 0 <= b[1] <= b[3] < height for b in boxes)
    assert sample.parts["strip"].shape[1] >= 3 * 40
    if chars == "cjk":
        manifest = json.loads((tmp_path / "w1" / "manifest.json").read_text())
        assert (
            manifest["resources"]["font"].startswith("NotoSansCJK") and len(manifest["resources"]["font_sha256"]) == 64
        )
        assert all(ord(c) > 0x2E7F for c in sample.question["prompt"])


def test_ddddocr_s_detector_reads_chinese_text_clicks_off_the_shelf(tmp_path):
    pytest.importorskip("ddddocr")
    if not cjk_font_paths():
        pytest.skip("no CJK font installed (Debian fonts-noto-cjk)")
    made = run_cli("generate", "--style", "textclick", "--count", "12", "--strength", "0", "--param", "chars=cjk", "--out", tmp_path / "d")  # fmt: skip
    assert made.returncode == 0, made.stderr
    attacked = run_cli("attack", "--attacker", "ddddocr-click", "--dataset", tmp_path / "d", "--out", tmp_path / "r")
    assert attacked.returncode == 0, attacked.stderr
    result = json.loads((tmp_path / "r" / "report.json").read_text())["per_attacker"]["ddddocr-click"]
    # plain dark characters, apart: its detector finds them and its OCR reads them
    assert result["target_hit_rate"] >= 0.6 and result["captcha_accuracy"] >= 0.3


def test_clicknet_trains_attacks_and_sweeps_end_to_end(tmp_path):
    model = tmp_path / "click.keras"
    trained = run_cli("train", "captcha", "--style", "iconclick", "--strength", "0", "--count", "40", "--budget", "80", "--workers", "1", "--out", model)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["attacker"] == "clicknet" and info["kind"] == "click" and info["convergence"]["converged"] is False
    swept = run_cli("sweep", "--model", model, "--style", "iconclick", "--strength", "0:1:2", "--count", "8", "--out", tmp_path / "s")  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    rows = report["rows"]
    assert [r["strength"] for r in rows] == [0.0, 1.0]
    assert all(0 <= r["captcha_accuracy"] <= 1 for r in rows)
    # the adversarial wrapper: scenes perturbed against it within eps, strips and answers untouched
    common = ["generate", "--style", "iconclick", "--count", "4", "--strength", "0"]
    assert run_cli(*common, "--out", tmp_path / "clean").returncode == 0
    perturbed = run_cli(
        *common, "--adversarial-against", model, "--eps", "6/255", "--steps", "2", "--out", tmp_path / "adv"
    )
    assert perturbed.returncode == 0, perturbed.stderr
    import cv2
    import numpy as np

    for name in ("00000", "00003"):
        clean, adv = (cv2.imread(str(tmp_path / f / f"{name}.png")).astype(int) for f in ("clean", "adv"))
        assert 0 < np.abs(clean - adv).max() <= 6
        assert (tmp_path / "clean" / f"{name}.strip.png").read_bytes() == (
            tmp_path / "adv" / f"{name}.strip.png"
        ).read_bytes()
    assert (tmp_path / "clean" / "labels.csv").read_text() == (tmp_path / "adv" / "labels.csv").read_text()


def test_bad_click_designs_and_labels_are_one_line_errors(tmp_path):
    for args, fragment in (
        (
            [
                "--style",
                "iconclick",
                "--param",
                "targets=6",
                "--param",
                "decoys=16",
                "--param",
                "size=120",
                "--param",
                "width=160",
                "--param",
                "height=100",
            ],
            "do not fit",
        ),  # fmt: skip
        (["--style", "iconclick", "--param", "prompt=sketch"], "prompt='sketch'"),
        (["--style", "textclick", "--param", "chars=abഒ"], "cannot draw 'ഒ'"),
        (["--style", "textclick", "--param", "chars=AB"], "need that many different characters"),
    ):
        assert_one_line_error(run_cli("generate", *args, "--count", "2", "--out", tmp_path / "x"), fragment)
        assert not (tmp_path / "x").exists()
    made = run_cli("generate", "--style", "iconclick", "--count", "4", "--strength", "0", "--out", tmp_path / "d")
    assert made.returncode == 0, made.stderr
    labels = tmp_path / "d" / "labels.csv"
    rows = labels.read_text().splitlines()
    rows[1] = rows[1].rsplit(",", 1)[0] + ",10 10 5"  # a box of three numbers
    rows[2] = rows[2].rsplit(",", 1)[0] + ",10 10 400 20"  # a box past the scene's right edge
    labels.write_text("\n".join(rows) + "\n")
    from captchalab.data.dataset import read_dataset

    data = read_dataset(tmp_path / "d")
    assert len(data) == 2 and [r[0] for r in data.rejected] == ["00000.png", "00001.png"]
    assert "four whole numbers" in data.rejected[0][1] and "outside the 320x200 scene" in data.rejected[1][1]


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    answer=json_values,
    text=st.text(max_size=60),
    cells=st.tuples(st.text(max_size=12), st.text(max_size=12), st.text(max_size=40)),
)
def test_fuzzed_clicks_and_rows_are_read_or_refused_with_a_reason(answer, text, cells):
    from captchalab.kinds import get_kind, parse_clicks

    kind, question = get_kind("click"), {"prompt": "", "count": 3, "size": [320, 200]}
    for read in (lambda: kind.page_answer(answer, question), lambda: kind.typed_answer(text, question)):
        try:
            clicks = parse_clicks(read())
        except ValueError:
            continue
        assert all(0 <= x < 320 and 0 <= y < 200 for x, y in clicks)
    try:
        parsed, boxes = kind.parse_row(dict(zip(("size", "prompt", "boxes"), cells)))
    except ValueError:
        return
    assert kind.correct(boxes, text) in (True, False)  # any reading is scored, never an error


def test_chinese_without_a_cjk_font_is_refused_in_one_line(monkeypatch):
    import sys

    from captchalab.data.dataset import GenerationSpec
    from captchalab.errors import CaptchalabError
    from captchalab.plugins import get_generator

    style = sys.modules[type(get_generator("textclick")).__module__]
    monkeypatch.setattr(style, "cjk_font_paths", lambda: ())  # a machine without fonts-noto-cjk
    with pytest.raises(CaptchalabError, match="install Debian's fonts-noto-cjk"):
        GenerationSpec("textclick", 1, params={"chars": "cjk"}).check()
    with pytest.raises(CaptchalabError, match="install Debian's fonts-noto-cjk"):
        GenerationSpec("textclick", 1, params={"chars": "春夏秋冬山水"}).check()
    GenerationSpec("textclick", 1, params={"chars": "latin"}).check()  # Latin letters need no CJK font
