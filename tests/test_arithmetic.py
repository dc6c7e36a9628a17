"""Arithmetic CAPTCHAs: the `math` style, the answer rule (a value computed from the drawn
expression), value scoring beside expression accuracy, labels that hold values only, bad labels,
and ctc starting from the digits base with its output extended by the operators."""

import csv
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


def test_an_expression_is_worth_what_a_site_computes():
    from captchalab.kinds import expression_value
    from captchalab.kinds.arithmetic import reading_value

    assert expression_value("14+21=?") == 35
    assert expression_value("14+21") == expression_value("14+21=") == 35
    assert expression_value("2+3×4") == 14 and expression_value("2+3x4") == 14  # times before plus
    assert expression_value("20-8÷4") == 18 and expression_value("3-7") == -4
    assert expression_value("35") == 35  # a value alone
    for bad, why in (("7÷2", "whole"), ("4÷0", "whole"), ("14++2", "malformed"), ("14^2", "not one of"),
                     ("", "empty"), ("+3", "malformed"), ("3+", "malformed")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            expression_value(bad)
    # a reading: what follows its first "=" is the prompt's "?", however it was read
    assert reading_value("15+19=7") == 34 and reading_value("15+19") == 34
    assert reading_value("2018=7") == 2018 and reading_value("15+=?") is None
    # an OCR engine's operators, brought to the set through their look-alikes (ddddocr reads + as 十)
    from captchalab.charset import in_charset

    assert in_charset("4十2=7", "0123456789+=?") == "4+2=7" and in_charset("3x4*2", "0123456789×") == "3×4×2"


def test_math_draws_its_strength_definition_the_same_with_any_worker_count(tmp_path):
    from captchalab.data.generate import generate_dataset, make_spec
    from captchalab.kinds import expression_value
    from captchalab.plugins import get_generator
    from captchalab.testing import check_style

    check_style(type(get_generator("math", [])), count=4)
    spec = make_spec("math", 40, None, None, 3, 0.5, [])
    assert spec.charset == "0123456789+-×=?"  # its own set: digits, its operators and "=?"
    one, two = generate_dataset(spec, tmp_path / "one", workers=1), generate_dataset(spec, tmp_path / "two", workers=2)
    assert one["images_sha256"] == two["images_sha256"] and one["captcha_kind"] == "arithmetic"
    rows = list(csv.reader((tmp_path / "one" / "labels.csv").open()))
    assert rows[0] == ["filename", "text", "value"]
    assert all(int(v) == expression_value(t) >= 0 and t.endswith("=?") for _, t, v in rows[1:])
    assert {c for _, t, _ in rows[1:] for c in t[:-2] if not c.isdigit()} <= set("+-×")
    easy = make_spec("math", 30, None, None, 3, 0.0, [])
    texts = [t for _, t, _ in render_all(easy)]
    assert all(t.count("+") == 1 and max(map(int, t[:-2].split("+"))) <= 9 for t in texts)
    hard = make_spec("math", 60, None, None, 3, 1.0, ["operators=÷"])
    values = [expression_value(t) for _, t, _ in (render_all(hard))]
    assert all(isinstance(v, int) for v in values)  # every division comes out whole


def render_all(spec):
    from captchalab.data.generate import render_many

    return [(i, drawn.label, None) for i, drawn in render_many(spec)]


def test_math_refuses_what_it_cannot_draw_in_one_line():
    from captchalab.data.generate import make_spec
    from captchalab.errors import CaptchalabError

    for params, why in ((["operators=+^"], "each must be one of"), (["low=30", "high=20"], "above high")):
        with pytest.raises(CaptchalabError, match=why):
            make_spec("math", 5, None, None, 1, 0.5, params)
    with pytest.raises(CaptchalabError, match="lacks"):  # a set without the operators it draws
        make_spec("math", 5, None, "0123456789+", 1, 0.5, [])


def write_folder(folder, header, rows):
    import cv2

    folder.mkdir()
    image = np.full((30, 90, 3), 255, np.uint8)
    cv2.putText(image, "1+2", (5, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
    for row in rows:
        cv2.imwrite(str(folder / row[0]), image)
    (folder / "labels.csv").write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return folder


def test_value_scoring_passes_a_misread_that_keeps_the_value(tmp_path):
    from captchalab.attack import Item
    from captchalab.attackers.base import Reading
    from captchalab.data.folders import read_dataset
    from captchalab.score import score

    folder = write_folder(tmp_path / "d", "filename,text,value", [(f"{i}.png", t, "") for i, t in
                          enumerate(["12+3=?", "4×5=?", "9-2=?", "6+6=?"])])  # fmt: skip
    dataset = read_dataset(folder)
    assert dataset.kind == "arithmetic"
    read = ["13+2=?", "4×5=7", "9+2=?", "6+"]  # the value kept; right (the "?" misread); wrong; unparsable
    items = [Item(i, n, t, prepared=1, reading=Reading(r)) for i, (n, t, r) in
             enumerate(zip(dataset.filenames, dataset.texts, read))]  # fmt: skip
    result = score(items, "0123456789+-×=?", kind=dataset.kind)
    assert result["captcha_accuracy"] == 0.5 and result["expression_accuracy"] == 0.0
    assert result["unparsable"] == 1 and result["kind"] == "arithmetic"
    # a site's log: the values alone are scored the same way, with no expression to compare
    values = read_dataset(write_folder(tmp_path / "v", "filename,value", [("a.png", "15"), ("b.png", "20")]))
    items = [Item(i, n, t, prepared=1, reading=Reading(r)) for i, (n, t, r) in
             enumerate(zip(values.filenames, values.texts, ["12+3", "4×6"]))]  # fmt: skip
    result = score(items, "0123456789+-×", kind=values.kind)
    assert result["captcha_accuracy"] == 0.5 and result["expressions_scored"] == 0


def test_bad_labels_are_named_and_values_alone_cannot_train(tmp_path):
    from captchalab.data.folders import read_dataset

    rows = [("a.png", "14+21=?", "35"), ("b.png", "14++2", ""), ("c.png", "14^2", ""), ("d.png", "3+4", "8"),
            ("e.png", "7÷2", ""), ("f.png", "", "35"), ("g.png", "", "3.5")]  # fmt: skip
    dataset = read_dataset(write_folder(tmp_path / "d", "filename,text,value", rows))
    assert dataset.texts == ["14+21=?", "35"]
    why = dict(dataset.rejected)
    assert "not an expression" in why["b.png"] and "not an expression" in why["c.png"]
    assert "is 7, its value cell says 8" in why["d.png"] and "not an expression" in why["e.png"]
    assert "not a whole number" in why["g.png"]
    # a folder of expressions labelled `filename,text`: plain text unless read as arithmetic
    plain = write_folder(tmp_path / "t", "filename,text", [("a.png", "1+2"), ("b.png", "3×3")])
    assert read_dataset(plain).kind == "text" and read_dataset(plain, kind="arithmetic").kind == "arithmetic"
    values = write_folder(tmp_path / "v", "filename,value", [(f"{i}.png", str(i)) for i in range(8)])
    result = run_cli("train", "captcha", "--dataset", values, "--attacker", "ctc", "--from", "scratch",
                     "--budget", 10, "--out", tmp_path / "m.keras")  # fmt: skip
    assert_one_line_error(result, "values only")
    assert not (tmp_path / "m.keras").exists()


def test_ctc_reads_expressions_from_the_digit_base_extended(tmp_path):
    from captchalab.attack import attack_many
    from captchalab.attackers.base import TrainSettings, load_attacker, make_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.pretrained import starting_model
    from captchalab.train import train_attacker

    said = []
    spec = GenerationSpec("math", 120, seed=4, strength=0.0)
    start = starting_model("base", "ctc", spec.charset, said.append)
    assert start.name == "ctc-digits.keras" and "output layer extended by 3 characters" in said[0]
    info = train_attacker(make_attacker("ctc", spec.charset), Source(spec=spec), tmp_path / "m.keras",
                          TrainSettings(budget=200, seed=1), init_from=start, workers=0)  # fmt: skip
    assert "for 10 of 13 characters" in info["initialised_weights"]
    reader = load_attacker(tmp_path / "m.keras")
    test = Source(spec=GenerationSpec("math", 20, seed=9, strength=0.0))
    result, _ = attack_many([reader], {"math": test}, None, 0)
    measured = next(iter(result["per_attacker"].values()))
    assert measured["count"] == 20 and {"expression_accuracy", "unparsable"} <= set(measured)
    assert json.loads((tmp_path / "m.json").read_text())["charset"] == "0123456789+=?"


def test_a_study_page_scores_people_by_value(tmp_path):
    from captchalab.data.dataset import GenerationSpec, generate_dataset
    from captchalab.humans.answers import Rejected
    from captchalab.humans.pool import StudySettings, open_study
    from captchalab.kinds import expression_value

    generate_dataset(GenerationSpec("math", 6, seed=5, strength=0.5), tmp_path / "math")
    study = open_study(tmp_path / "s", [tmp_path / "math"], StudySettings(per_person=2, practice=0, attention=0))
    p = study.start()
    served = study.next_item(p.id)
    assert served.item.kind == "arithmetic"
    with pytest.raises(Rejected):  # the expression copied out is not an answer: the page asks the value
        study.answer(p.id, served.token, served.item.truth)
    record = study.answer(p.id, served.token, str(expression_value(served.item.truth)))
    assert record["correct"]
    served = study.next_item(p.id)
    assert not study.answer(p.id, served.token, str(expression_value(served.item.truth) + 1))["correct"]


def test_people_answer_with_the_value():
    from captchalab.kinds import get_kind

    kind = get_kind("arithmetic")
    assert kind.widget == "text" and "value" in kind.asks
    assert kind.correct("14+21=?", kind.page_answer(" 35 ", None))
    for typed in ("14+21", "thirty-five", "3.5"):
        with pytest.raises(ValueError):
            kind.page_answer(typed, None)
    rng = np.random.default_rng(0)
    assert kind.page_value("14+21=?", None) == "35"
    assert not kind.correct("14+21=?", kind.wrong_value("14+21=?", None, "", rng))
