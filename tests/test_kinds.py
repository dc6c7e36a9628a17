"""A CAPTCHA kind is one object: a kind written only under tests/ (tests/oddkind, "pick the odd
colour") goes through generate, attack, report, sweep, training, the study page and explore with
no edit in captchalab/; no module outside captchalab/kinds/ branches on a kind's name; each kind's
report shows its own measures; check_style holds sliders to their promises."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, run_cli

ODD = REPO / "tests" / "oddkind"


def test_a_kind_written_outside_goes_through_the_whole_house(tmp_path):
    made = run_cli("generate", "--style", "oddcolour", "--plugins", ODD, "--count", "60", "--out", tmp_path / "d")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "d" / "labels.csv").read_text().splitlines()[0] == "filename,odd"
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["captcha_kind"] == "odd"

    attacked = run_cli(
        "attack", "--attacker", "oddpicker", "--plugins", ODD, "--dataset", tmp_path / "d", "--out", tmp_path / "r"
    )
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["kind"] == "odd" and report["count"] == 60 and report["captcha_accuracy"] == 1.0
    page = (tmp_path / "r" / "report.md").read_text()
    assert "the share of challenges whose odd square was picked" in page
    assert "character accuracy" not in page and "charset" not in page and "tile" not in page

    swept = run_cli(
        "sweep",
        "--attacker",
        "oddpicker",
        "--plugins",
        ODD,
        "--style",
        "oddcolour",
        "--strength",
        "0:1:2",
        "--count",
        "30",
        "--out",
        tmp_path / "s",
    )
    assert swept.returncode == 0, swept.stderr
    steps = json.loads((tmp_path / "s" / "report.json").read_text())["steps"]
    assert [s["status"] for s in steps] == ["done", "done"] and steps[0]["captcha_accuracy"] == 1.0

    from captchalab.attackers.base import TrainSettings, get_attacker
    from captchalab.data.dataset import Source, read_dataset
    from captchalab.explore.server import Explorer
    from captchalab.humans.pool import open_study
    from captchalab.humans.server import served_payload
    from captchalab.train import train_attacker

    model = tmp_path / "odd.keras"
    info = train_attacker(
        get_attacker("oddcnn", [str(ODD)])(),
        Source(dataset=read_dataset(tmp_path / "d")),
        model,
        TrainSettings(epochs=2, batch_size=16, seed=1),
        workers=0,
    )
    assert info["kind"] == "odd" and (tmp_path / "odd.json").is_file()

    explorer = Explorer([model], plugin_dirs=[str(ODD)])
    described = explorer.describe()
    assert described["models"][0]["view"] == "challenge" and described["models"][0]["example_style"] == "oddcolour"
    view = explorer.challenge_view("m0", None, 0.0, 4)
    assert view["kind"] == "odd" and view["truth"].isdigit() and isinstance(view["solved"], bool)
    assert view["said"].startswith("answers") and view["layers"]  # the CNN's ReLU maps

    study = open_study(tmp_path / "people", [tmp_path / "d"])
    p = study.start()
    served = study.next_item(p.id)
    while served.phase != "main":
        study.answer(p.id, served.token, "0")
        served = study.next_item(p.id)
    payload = served_payload(served)
    assert payload["widget"] == "text" and payload["asks"].startswith("Type the number of the square")
    record = study.answer(p.id, served.token, served.item.truth)
    assert record["correct"] is True and record["kind"] == "odd"

    # the same study page started as a user starts it, the kind's plugin named on the command line
    import urllib.request
    from captchalab.serving import launch

    process, url = launch(
        [
            "humans",
            "--dataset",
            tmp_path / "d",
            "--plugins",
            ODD,
            "--out",
            tmp_path / "page",
            "--practice",
            0,
            "--attention",
            0,
        ],
        "api/study",
    )
    try:
        ask = urllib.request.Request(
            url + "api/start", data=json.dumps({"consent": True}).encode(), headers={"Content-Type": "application/json"}
        )
        started = json.loads(urllib.request.urlopen(ask, timeout=10).read())
        shown = json.loads(
            urllib.request.urlopen(f"{url}api/next?participant={started['participant']}", timeout=10).read()
        )
        assert shown["kind"] == "odd" and shown["widget"] == "text" and shown["image"].startswith("data:image/png")
    finally:
        process.terminate()
        process.wait(timeout=20)


KIND_NAMES = {"text", "grid", "slider", "rotation"}


def _kind_name_branches(path: Path, root: Path = REPO) -> list[str]:
    """Comparisons with a kind's name, and dicts keyed by kind names, in one Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            names = [o.value for o in operands if isinstance(o, ast.Constant) and o.value in KIND_NAMES]
            names += [
                e.value
                for o in operands
                if isinstance(o, (ast.Tuple, ast.Set, ast.List))
                for e in o.elts
                if isinstance(e, ast.Constant) and e.value in KIND_NAMES
            ]
            about_kind = any("kind" in ast.unparse(o).lower() for o in operands)
            if names and about_kind:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
        if (
            isinstance(node, ast.Dict)
            and len(node.keys) >= 2
            and all(isinstance(k, ast.Constant) and k.value in KIND_NAMES for k in node.keys)
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}: a dict keyed by kind names")
    return found


def test_nothing_outside_the_kinds_branches_on_a_kind_name():
    kinds = REPO / "captchalab" / "kinds"
    found = [
        hit
        for path in sorted((REPO / "captchalab").rglob("*.py"))
        if kinds not in path.parents
        for hit in _kind_name_branches(path)
    ]
    names = "|".join(KIND_NAMES)
    compared = re.compile(rf"kind\s*[!=]==?\s*[\"']({names})[\"']")
    keyed = re.compile(rf"\{{\s*({names})\s*:[^,{{}}]*,\s*({names})\s*:")  # {grid: ..., slider: ...}
    for script in sorted((REPO / "captchalab").rglob("*.js")):
        for number, line in enumerate(script.read_text().splitlines(), 1):
            if compared.search(line) or keyed.search(line):
                found.append(f"{script.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_branch_finder_finds_branches(tmp_path):
    """The check above can fail: it sees each way of branching on a kind's name."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        'if attacker.kind == "grid":\n    pass\n'
        'x = 1 if source.kind in ("slider", "rotation") else 2\n'
        'asks = {"text": "a", "grid": "b"}\n'
    )
    assert len(_kind_name_branches(sample, tmp_path)) == 3


@pytest.mark.parametrize(
    "style, attacker, shown, absent",
    [
        (
            "slider",
            "template",
            ["success (within 5 px)", "within 20 px", "mean error (px)", "median error (px)"],
            ["tile", "lenient", "charset `", "character"],
        ),
        (
            "rotation",
            "orientation",
            ["success (within 10 degrees)", "within 45 degrees", "mean error (degrees)"],
            ["tile", "lenient", "charset `", "character", " px"],
        ),
    ],
)
def test_sliders_and_rotations_report_their_own_measures(tmp_path, style, attacker, shown, absent):
    from captchalab.attack import attack_many
    from captchalab.attackers.base import make_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.report import write_attack_report

    result, examples = attack_many(
        [make_attacker(attacker)], {"": Source(spec=GenerationSpec(style, 12, seed=2))}, workers=0
    )
    write_attack_report(tmp_path / "r", result, examples)
    for name in ("report.md", "report.html"):
        page = (tmp_path / "r" / name).read_text()
        for text in shown:
            assert text in page, (name, text)
        for text in absent:
            assert text not in page, (name, text)
    row = next(
        line for line in (tmp_path / "r" / "report.md").read_text().splitlines() if line.startswith(f"| {attacker} |")
    )
    assert f"{result['captcha_accuracy']:.2%}" in row


def _slider_style(name: str, draw):
    from captchalab.generator import Challenge, Generator

    return type(
        name,
        (Generator,),
        {
            "name": name,
            "kind": "slider",
            "description": "a broken slider",
            "challenge": lambda self, rng, p: Challenge(*draw()),
        },
    )


@pytest.mark.parametrize(
    "draw, fragment",
    [
        (lambda: (np.zeros((150, 300, 3), np.uint8), {"y": 10}, "20", {}, {}), "must carry its piece"),
        (
            lambda: (
                np.zeros((150, 300, 3), np.uint8),
                {"y": 10},
                "20",
                {},
                {"piece": np.zeros((40, 40, 3), np.uint8)},
            ),
            "RGBA",
        ),
        (
            lambda: (np.zeros((150, 300, 3), np.uint8), {"y": 0}, "0", {}, {"piece": np.zeros((200, 40, 4), np.uint8)}),
            "larger than the background",
        ),
        (
            lambda: (
                np.zeros((150, 300, 3), np.uint8),
                {"y": 10},
                "900",
                {},
                {"piece": np.zeros((40, 40, 4), np.uint8)},
            ),
            "outside the 300-pixel-wide background",
        ),
        (
            lambda: (
                np.zeros((150, 300, 3), np.uint8),
                {"y": 500},
                "20",
                {},
                {"piece": np.zeros((40, 40, 4), np.uint8)},
            ),
            "outside the 150-pixel-high background",
        ),
    ],
)
def test_check_style_holds_a_slider_to_its_promises(draw, fragment):
    from captchalab.testing import ContractError, check_style

    with pytest.raises(ContractError, match=re.escape(fragment)):
        check_style(_slider_style("brokenslider", draw), count=1)


def test_the_built_in_styles_of_every_kind_keep_their_promises():
    from captchalab.plugins import get_generator
    from captchalab.testing import check_style

    for name in ("slider", "rotation", "grid3"):
        check_style(type(get_generator(name)), count=2)


def test_a_named_plugin_replaces_a_built_in_and_says_so(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "clean.py").write_text(
        "from captchalab.generators.clean import Clean\nfrom captchalab.generator import register\n\n"
        "@register\nclass MyClean(Clean):\n    description = 'my own clean style'\n"
    )
    listed = run_cli("generators", "--plugins", tmp_path / "mine")
    assert listed.returncode == 0, listed.stderr
    entry = listed.stdout.split("clean: ", 1)[1].splitlines()
    assert entry[0] == "my own clean style" and str(tmp_path / "mine" / "clean.py") in entry[1]
    assert "note: style 'clean' from" in listed.stderr and "replaces the one from built-in" in listed.stderr


def test_a_run_that_reads_nothing_is_an_error(tmp_path):
    made = run_cli("generate", "--style", "slider", "--count", "2", "--out", tmp_path / "d")
    assert made.returncode == 0, made.stderr
    for piece in (tmp_path / "d").glob("*.piece.png"):
        piece.unlink()
    assert_one_line_error(
        run_cli("attack", "--attacker", "template", "--dataset", tmp_path / "d", "--out", tmp_path / "r"),
        "read nothing",
    )
    assert not (tmp_path / "r").exists()


def test_a_run_the_clock_stopped_gets_one_truthful_reason():
    from captchalab.training import Stopping, convergence

    state = {
        "stopped": "time limit",
        "epoch": 47,
        "images_seen": 114_210,
        "best_val_accuracy": 0.9,
        "best_epoch": 40,
        "reductions": 0,
        "history": [],
    }
    verdict = convergence(state, 120, 0.99, Stopping(budget=200_000, wall_seconds=60))
    said = "; ".join(verdict["reasons"])
    assert verdict["converged"] is False and "whole budget" not in said
    assert "stopped by the wall-clock limit after 47 epochs (114,210 examples of its budget of 200,000)" in said
    state["stopped"] = "budget"
    assert "so its whole budget ran (114,210 examples)" in "; ".join(
        convergence(state, 120, 0.99, Stopping(budget=114_210))["reasons"]
    )


LAZY = """
import numpy as np
from captchalab.attackers import Attacker, Reading, register_attacker

@register_attacker
class Lazy(Attacker):
    name, description = "lazy", "Trains with its own fit, which ignores the budget."

    def prepare(self, image, length):
        return np.zeros((4, 4), np.uint8)

    def build(self, seed):
        import keras
        return keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])

    def fit(self, train, validation, settings, checkpoint, resume=False, on_epoch=None):
        return {"val_accuracy": None, "history": []}

    def read_prepared(self, batch):
        return [Reading("0", [1.0]) for _ in batch]
"""


def test_a_plugins_own_fit_that_ignores_the_budget_is_warned_about(tmp_path):
    from captchalab.attackers.base import TrainSettings, get_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.train import train_attacker

    (tmp_path / "lazy").mkdir()
    (tmp_path / "lazy" / "lazy.py").write_text(LAZY)
    lazy = get_attacker("lazy", [str(tmp_path / "lazy")])()
    source = Source(spec=GenerationSpec("clean", 12, seed=1))
    info = train_attacker(lazy, source, tmp_path / "lazy.keras", TrainSettings(budget=100, seed=1), workers=0)
    assert (
        len(info["warnings"]) == 1 and "did not record running under the budget of 100 examples" in info["warnings"][0]
    )
    again = train_attacker(get_attacker("lazy")(), source, tmp_path / "lazy2.keras", TrainSettings(seed=1), workers=0)
    assert again["warnings"] == []  # no budget was given: nothing to ignore


def test_run_takes_plugins_and_train_refuses_another_kinds_attacker_first(tmp_path):
    study = tmp_path / "odd.toml"
    study.write_text(
        '[study]\nname = "odd"\nseed = 3\ntest_count = 20\n\n[grid]\nstyle = ["oddcolour"]\n'
        'strength = [0.0]\n\n[[attacker]]\nlabel = "picker"\nattacker = "oddpicker"\n'
    )
    ran = run_cli("run", study, "--plugins", ODD, "--out", tmp_path / "s")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads((tmp_path / "s" / "report.json").read_text())["rows"]
    assert [(r["status"], r["captcha_accuracy"]) for r in rows] == [("done", 1.0)]
    refused = run_cli("train", "captcha", "--style", "slider", "--attacker", "ctc", "--out", tmp_path / "m.keras")
    assert_one_line_error(refused, "attacker 'ctc' reads text CAPTCHAs; slider holds slider CAPTCHAs")
    assert "training it first" not in refused.stderr and not (tmp_path / "m.keras").exists()
