"""`captchalab audit`: a tiny audit of one design of each kind end to end (the real engine, real
trainings from the bases, the off-the-shelf attackers installed here), the verdict's structure, a
headline that says when it rests on an attacker that had not converged, an interrupted audit that
resumes to the same verdict, and bad command lines."""

import json
import shutil
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run_cli

TINY = dict(budgets=(12, 24), test_count=8, epochs=1)


@pytest.fixture
def with_mnist_base(tiny_model_path):
    """segment's base (models/mnist.keras) from the session's tiny MNIST network, not a real one."""
    Path("models").mkdir(exist_ok=True)
    for suffix in (".keras", ".json"):
        shutil.copy(tiny_model_path.with_suffix(suffix), Path("models") / f"mnist{suffix}")


def check_verdict(verdict: dict, out: Path, kind: str, trained: set, off_shelf: set, ladder=(12, 24)) -> None:
    assert verdict["design"]["kind"] == kind and verdict["ladder"] == list(ladder)
    assert {n for n, a in verdict["attackers"].items() if a["trained"]} == trained
    assert off_shelf <= {n for n, a in verdict["attackers"].items() if not a["trained"]}
    for name, a in verdict["attackers"].items():
        steps = a["steps"]
        assert [s["budget"] for s in steps] == (list(ladder) if a["trained"] else [0]), name
        for s in steps:
            assert s["status"] == "done" and 0 <= s["success"] <= 1 and s["interval"][0] <= s["success"], name
        if a["trained"]:
            assert set(a["break_cost"]) == {"10%", "50%", "90%"}
            assert all("said" in c for c in a["break_cost"].values())
    assert verdict["status"] in ("broken", "weakened", "holds") and verdict["headline"].startswith(verdict["status"])
    assert verdict["machine"]["seconds"] >= 0 and verdict["machine"]["cpu"]
    assert json.loads((out / "verdict.json").read_text())["headline"] == verdict["headline"]
    page = (out / "verdict.md").read_text()
    assert verdict["headline"] in page and "Break cost" in page and (out / "verdict.html").is_file()


@pytest.mark.parametrize(
    "style, kind, trained, off_shelf",
    [
        ("grid3", "grid", {"tilecnn"}, set()),
        ("slider", "slider", {"locator"}, {"template"}),
        ("rotation", "rotation", {"rotnet"}, {"orientation"}),
        ("iconclick", "click", {"clicknet"}, set()),
    ],
)
def test_each_kind_gets_its_ladder(tmp_path, style, kind, trained, off_shelf, with_mnist_base):
    from captchalab.audit import Ladder, audit

    verdict = audit(tmp_path / style, style, strength=0.5, budget=Ladder(**TINY))
    check_verdict(verdict, tmp_path / style, kind, trained, off_shelf)


def test_arithmetic_is_audited_by_the_text_readers():
    from captchalab.audit import ladder_attackers
    from captchalab.data.dataset import GenerationSpec

    trained, off_shelf, left_out = ladder_attackers(GenerationSpec("math", 1, strength=0.5), "")
    assert set(trained) == {"segment", "ctc"} and "vlm" in left_out
    assert {"ddddocr", "rapidocr", "tesseract"} & set(off_shelf)  # those installed here read it off the shelf


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-digits-4"


def real_folder(folder: Path, count: int, twice: int = 0) -> Path:
    """`count` real login CAPTCHAs (and `twice` of them stored again under other names)."""
    import csv

    rows = list(csv.reader((REAL / "labels.csv").open()))[1 : count + 1]
    folder.mkdir()
    for name, _ in rows:
        shutil.copy(REAL / name, folder / name)
    extra = [(f"again-{name}", text) for name, text in rows[:twice]]
    for (name, _), (copy, _) in zip(rows, extra):
        shutil.copy(REAL / name, folder / copy)
    (folder / "labels.csv").write_text("filename,text\n" + "".join(f"{n},{t}\n" for n, t in rows + extra))
    return folder


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real-digits-4 is not beside the project")
def test_a_dataset_is_audited_on_a_split_of_its_own_by_picture(tmp_path, with_mnist_base):
    from captchalab.audit import Ladder, audit, split_by_picture
    from captchalab.data.dataset import read_dataset

    folder = real_folder(tmp_path / "real", 40, twice=6)
    train, test = split_by_picture(read_dataset(folder), 8, seed=0)
    assert len(train) + len(test) == 46 and not set(train) & set(test)
    # a picture stored twice stays on one side of the split
    for name in test:
        assert f"again-{name}" not in train and name.removeprefix("again-") not in train
    import csv

    # one wrong label in the test split: the attackers that read most of them all read it otherwise
    labels = folder / "labels.csv"
    wrong = test[0]
    rows = [r if r[0] != wrong else [wrong, str(9999 - int(r[1])).zfill(4)] for r in csv.reader(labels.open())]
    labels.write_text("".join(",".join(r) + "\n" for r in rows))
    scraped = tmp_path / "scraped"  # other real CAPTCHAs of the site, without their labels
    scraped.mkdir()
    for name, _ in list(csv.reader((REAL / "labels.csv").open()))[41:51]:
        shutil.copy(REAL / name, scraped / name)
    ladder = Ladder(budgets=(12, 100), test_count=8, epochs=1)
    verdict = audit(tmp_path / "v", dataset=folder, unlabelled=scraped, budget=ladder)
    assert verdict["ladder"] == [12, 38] and verdict["test_count"] == 8  # the last rung: all it holds
    assert "by picture" in verdict["design"]["split"]
    semi = verdict["attackers"].pop("ctc+unlabelled")  # few labels plus the scraped folder, at the smallest budget
    assert semi["trained"] and [s["budget"] for s in semi["steps"]] == [12]
    check_verdict(verdict, tmp_path / "v", "text", {"segment", "ctc"}, {"ddddocr"}, [12, 38])
    for a in verdict["attackers"].values():
        if not a["trained"]:  # read once: the test split is the same at every budget
            assert a["steps"][0]["count"] == 8
    # one epoch on a dozen labels converges nothing: every trained number is a lower bound, said so
    assert all(s["lower_bound"] for a in verdict["attackers"].values() if a["trained"] for s in a["steps"])
    if verdict["rests_on_unconverged"]:
        assert "a lower bound: it had not converged" in verdict["headline"]
    assert any("lower bounds" in line for line in verdict["advice"])
    assert "vlm" in verdict["left_out"]  # a read-only attacker that needs a setting is named, not run
    if {"ddddocr", "rapidocr"} <= set(verdict["attackers"]):
        assert [s["name"] for s in verdict["suspect_labels"]] == [wrong]
        assert any("check those labels" in line for line in verdict["advice"])


def test_an_interrupted_audit_resumes_to_the_same_verdict(tmp_path):
    from captchalab.audit import Ladder, audit

    ladder = Ladder(**TINY)
    whole = audit(tmp_path / "whole", "slider", budget=ladder)

    class Interrupt(Exception):
        pass

    def stop_after_first(result, progress):
        if progress.ran == 2:  # the first cell is saved, the second is not
            raise Interrupt

    with pytest.raises(Interrupt):
        audit(tmp_path / "cut", "slider", budget=ladder, on_cell=stop_after_first)
    assert not (tmp_path / "cut" / "verdict.json").exists()  # nothing half-written
    resumed = audit(tmp_path / "cut", "slider", budget=ladder, resume=True)
    for verdict in (whole, resumed):
        verdict.pop("machine")
        for attacker in verdict["attackers"].values():
            for step in attacker["steps"]:
                step.pop("per_second")  # a speed, measured anew
    assert resumed == whole


def test_bad_audits_are_one_line_errors(tmp_path):
    for args, fragment in (
        (["--style", "nosuch"], "unknown style"),
        (["--style", "distorted", "--budget", "huge"], "huge"),
        (["--style", "math", "--param", "operators=^"], "each must be one of"),
        (["--style", "distorted", "--strength", "2"], "strength"),
    ):
        result = run_cli("audit", *args, "--out", tmp_path / "v")
        assert_one_line_error(result, fragment)
        assert not (tmp_path / "v").exists()
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x").write_text("")
    assert_one_line_error(run_cli("audit", "--style", "slider", "--out", tmp_path / "v"), "already exists")
    if REAL.is_dir():
        small = real_folder(tmp_path / "small", 30)
        for args, fragment in (
            (["--dataset", small], "too few"),
            (["--style", "distorted", "--dataset", small], "exactly one"),
            (["--dataset", small, "--adversarial-against", small], "--adversarial-against applies to --style"),
            (["--dataset", small, "--test", small], "shares 30 images"),
            (["--dataset", real_folder(tmp_path / "more", 400), "--unlabelled", small], "shares 30 images"),
        ):
            result = run_cli("audit", *args, "--out", tmp_path / "w")
            assert_one_line_error(result, fragment)
            assert not (tmp_path / "w").exists()


def test_a_perturbed_design_is_audited_against_an_attacker_that_adapts(tmp_path, with_mnist_base):
    from captchalab.audit import Ladder, _perturbation_target, audit
    from captchalab.data.dataset import read_dataset
    from captchalab.errors import CaptchalabError

    import captchalab

    target = tmp_path / "ctc.keras"  # the model the designer perturbed the challenges against: ctc's digits base
    for suffix in (".keras", ".json"):
        shutil.copy(Path(captchalab.__file__).parent / "bases" / f"ctc-digits{suffix}", target.with_suffix(suffix))
    ladder = Ladder(budgets=(12,), test_count=8, epochs=1)
    out = tmp_path / "v"
    verdict = audit(out, "clean", strength=0.0, budget=ladder, adversarial_against=target, eps=6, steps=2)
    assert verdict["design"]["perturbation"]["eps"] == 6 and "perturbed against ctc.keras" in verdict["design"]["name"]
    for part, count in (("train", 12), ("test", 8)):  # the perturbed challenges, kept beside the verdict
        drawn = read_dataset(out / "design" / part)
        assert len(drawn) == count and drawn.manifest["adversarial"]["target_model"] == str(target)
    adapted, held = verdict["attackers"]["ctc (adapted)"], verdict["attackers"]["ctc (target)"]
    assert adapted["trained"] and [s["budget"] for s in adapted["steps"]] == [12]
    assert not held["trained"] and held["steps"][0]["count"] == 8
    check_verdict(verdict, out, "text", {"segment", "ctc", "ctc (adapted)"}, {"ctc (target)"}, [12])
    with pytest.raises(CaptchalabError, match="other settings"):  # resumed with another eps
        audit(out, "clean", strength=0.0, budget=ladder, adversarial_against=target, eps=4, steps=2, resume=True)
    # the perturbed folder audited again, its target changed or gone: the adaptive step is named, left out
    recorded = drawn.manifest["adversarial"]
    target.write_bytes(target.read_bytes() + b" ")
    assert "has changed since" in _perturbation_target(recorded, ())
    target.unlink()
    assert "is not here" in _perturbation_target(recorded, ())
