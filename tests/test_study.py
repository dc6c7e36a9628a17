"""Study files and the cell engine: validation, a tiny study locally and on a real local Ray
cluster (same numbers), resume after an interruption or a kill, and a failing cell."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from captchalab.study.backends import LocalBackend
from captchalab.study.runner import run_study
from captchalab.study.expand import build_cells
from captchalab.study.studyfile import load_study
from conftest import REPO, assert_one_line_error, run_cli

NUMBERS = ("captcha_accuracy", "char_accuracy", "segmentation_box_rate", "count", "skipped")


def write_study(folder, model, extra_grid="", attackers=None, test_count=6):
    folder.mkdir(parents=True, exist_ok=True)
    attackers = (
        attackers
        if attackers is not None
        else f'''
        [[attacker]]
        label = "tiny"
        model = "{model}"
    '''
    )
    path = folder / "study.toml"
    path.write_text(
        textwrap.dedent(f"""
        [study]
        name = "tiny"
        seed = 5
        test_count = {test_count}

        [grid]
        style = ["clean", "distorted"]
        strength = [0.0, 1.0]
        {extra_grid}
    """)
        + textwrap.dedent(attackers)
    )
    return path


def numbers(rows):
    return [{k: r.get(k) for k in ("cell", "attacker", "status", *NUMBERS)} for r in rows]


@pytest.mark.parametrize(
    "body, fragment, line",
    [
        ('[study]\nname = "x"\nwobble = 1\n', "unknown key 'wobble' in [study]", 3),
        ('[grid]\nstyle = ["clean", "nope"]\n', "unknown style 'nope'", 2),
        ('[grid]\nstyle = ["clean"]\nstrength = [0.5, 1.5]\n', "strength 1.5 is outside [0, 1]", 3),
        ('[grid]\nstyle = ["clean"]\n[grid.params]\nwobble = [1, 2]\n', "no parameter 'wobble'", 4),
        ('[grid]\nstyle = ["clean"]\n[grid.params]\nspacing = [1.5, 9.0]\n', "spacing=9.0 is outside", 4),
        ("[grid]\nstyle = []\n", "style must be a non-empty list", 2),
        ('[grid]\nstyle = ["clean"]\n', "no [[attacker]]", 1),
        ('[grid]\nstyle = ["clean"]\n\n[[attacker]]\nattacker = "nope"\n', "unknown attacker 'nope'", 5),
        ('[grid]\nstyle = ["clean"]\n\n[[attacker]]\nattacker = "ctc"\n', 'train = "cell" or "shared"', 5),
        ('[grid]\nstyle = ["clean"]\n\n[[attacker]]\nmodel = "none.keras"\n', "does not exist", 5),
        (
            '[grid]\nstyle = ["clean"]\n\n[[attacker]]\nattacker = "ctc"\ntrain = "cell"\n'
            "train_count = 10\nhparams = {wobble = 1}\n",
            "no hyper-parameter 'wobble'",
            8,
        ),
        ("not toml = = =\n", "not valid TOML", None),
    ],
)
def test_bad_study_files_are_one_line_errors_naming_the_line(tmp_path, body, fragment, line):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    result = run_cli("run", path, "--out", tmp_path / "out")
    assert_one_line_error(result, fragment)
    if line:
        assert f"bad.toml:{line}:" in result.stderr
    assert not (tmp_path / "out").exists()


def test_too_many_cells(tmp_path, tiny_model_path):
    path = write_study(tmp_path, tiny_model_path, "seeds = 3")
    assert_one_line_error(run_cli("run", path, "--max-cells", "5", "--out", tmp_path / "o"), "above --max-cells 5")


def test_cells_share_test_sets_across_attackers_and_training_sizes(tmp_path, tiny_model_path):
    path = write_study(
        tmp_path,
        tiny_model_path,
        "train_count = [0, 10]\nseeds = 2",
        attackers=f'''
        [[attacker]]
        label = "fixed"
        model = "{tiny_model_path}"

        [[attacker]]
        label = "tuned"
        attacker = "segment"
        train = "cell"
        from = "{tiny_model_path}"
    ''',
    )
    cells = build_cells(load_study(path))
    assert len(cells) == 2 * 2 * 2 * 2
    by = {(c.coords["style"], c.coords["strength"], c.coords["train_count"], c.coords["seed"]): c for c in cells}
    assert by[("clean", 0.0, 0, 0)].test == by[("clean", 0.0, 10, 0)].test  # same CAPTCHAs for every size
    assert by[("clean", 0.0, 0, 0)].test.seed != by[("clean", 0.0, 0, 1)].test.seed
    tuned = [c.attackers[1] for c in cells]
    assert all(a.training is None and a.model for a in tuned if a.training is None)  # size 0: the start model
    assert len({a.training.key() for a in tuned if a.training}) == 8  # one per (style, strength, seed)


def test_tiny_study_locally_then_resume_redoes_only_what_is_missing(tmp_path, tiny_model_path):
    path = write_study(tmp_path, tiny_model_path)
    study = load_study(path)
    out = tmp_path / "out"
    seen = []

    class Stop(Exception):
        pass

    def stop_after_two(result, progress):
        seen.append(result["id"])
        if len(seen) == 2:
            raise Stop()

    with pytest.raises(Stop):
        run_study(study, build_cells(study), out, LocalBackend(), on_cell=stop_after_two)
    done = sorted(p.name for p in (out / "cells").glob("*.json"))
    assert len(done) == 1  # the second result was interrupted before it was saved
    mtime = (out / "cells" / done[0]).stat().st_mtime_ns
    again = []
    report = run_study(
        study, build_cells(study), out, LocalBackend(), resume=True, on_cell=lambda r, p: again.append(r["id"])
    )
    assert len(again) == 3 and done[0][:-5] not in again
    assert (out / "cells" / done[0]).stat().st_mtime_ns == mtime
    whole = run_study(study, build_cells(study), tmp_path / "whole", LocalBackend())
    assert numbers(report["rows"]) == numbers(whole["rows"])
    with open(out / "cells.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and {"style", "strength", "attacker", "captcha_accuracy"} <= set(table[0])
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 1 and "http" not in page


def run_until_a_cell(path, out, address, then):
    """`captchalab run` on the Ray cluster at `address`; `then()` once its first cell is recorded."""
    driver = subprocess.Popen(
        [sys.executable, "-m", "captchalab", "run", path, "--backend", "ray", "--address", address, "--out", out],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list((out / "cells").glob("*.json")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    then(driver)
    return driver


def test_a_study_survives_a_lost_node_and_a_killed_driver_on_a_two_node_ray_cluster(
    tmp_path, tiny_model_path, monkeypatch
):
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    path = write_study(tmp_path, tiny_model_path, test_count=60)
    local = run_cli("run", path, "--out", tmp_path / "local", timeout=600)
    assert local.returncode == 0, local.stderr
    expected = numbers(json.loads((tmp_path / "local" / "cells.json").read_text()))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    # tasks run on the other nodes only; a lost node is noticed within about 2 s, not Ray's 30
    quick = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_timeout_ms": 500,
             "worker_niceness": 0}  # Ray's workers run at nice 15: beside the other tests they would wait  # fmt: skip
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": quick})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        # the node running the study is lost mid-study; another joins, and the study finishes there
        lost = []

        def lose_the_node(driver):
            lost.append(len(list((tmp_path / "ray" / "cells").glob("*.json"))))
            cluster.remove_node(worker, allow_graceful=False)
            cluster.add_node(num_cpus=1)

        driver = run_until_a_cell(path, tmp_path / "ray", cluster.address, lose_the_node)
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0 and lost == [1], err
        assert numbers(json.loads((tmp_path / "ray" / "cells.json").read_text())) == expected
        said = [line for line in err.splitlines() if line.strip()]
        assert sum("a Ray node was lost" in line for line in said) == 1, err
        assert sum(line.startswith("[") and "] " in line for line in said) == 4, err  # each cell recorded once
        assert not [line for line in said if "raylet" in line or ".cc:" in line or "WARNING" in line], err
        # the driver killed mid-study; --resume on the same cluster finishes it
        driver = run_until_a_cell(path, tmp_path / "again", cluster.address, lambda d: d.send_signal(signal.SIGKILL))
        driver.communicate(timeout=60)
        resumed = run_cli("run", path, "--backend", "ray", "--address", cluster.address, "--out", tmp_path / "again",
                          "--resume", timeout=600)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert numbers(json.loads((tmp_path / "again" / "cells.json").read_text())) == expected
        # a cluster that answers but runs another Ray: one line naming both versions
        import ray._common.usage.usage_lib as usage
        from ray._raylet import GcsClient

        gcs = GcsClient(address=cluster.address)
        metadata = usage.get_cluster_metadata(gcs)
        gcs.internal_kv_put(usage.usage_constant.CLUSTER_METADATA_KEY,
                            json.dumps({**metadata, "ray_version": "2.9.0"}).encode(), True,
                            usage.ray_constants.KV_NAMESPACE_CLUSTER)  # fmt: skip
        other = run_cli("run", path, "--backend", "ray", "--address", cluster.address, "--out", tmp_path / "other")
        assert_one_line_error(other, "runs Ray 2.9.0")
        assert not (tmp_path / "other" / "cells.json").exists()
        gcs.internal_kv_put(usage.usage_constant.CLUSTER_METADATA_KEY,
                            json.dumps(metadata).encode(), True, usage.ray_constants.KV_NAMESPACE_CLUSTER)  # fmt: skip
        # a node whose Python finds no working captchalab: named in one line before any cell runs
        broken = tmp_path / "broken" / "captchalab"
        broken.mkdir(parents=True)
        (broken / "__init__.py").write_text("raise ImportError('captchalab is not installed here')\n")
        with monkeypatch.context() as scoped:
            scoped.setenv("PYTHONPATH", str(broken.parent))  # the node's raylet and workers inherit it
            cluster.add_node(num_cpus=1)
        bare = run_cli("run", path, "--backend", "ray", "--address", cluster.address, "--out", tmp_path / "bare")
        assert_one_line_error(bare, "cannot run captchalab's tasks")
        assert not (tmp_path / "bare" / "cells.json").exists()
    finally:
        cluster.shutdown()


def test_unreachable_ray_address_fails_fast(tmp_path, tiny_model_path):
    pytest.importorskip("ray")
    path = write_study(tmp_path, tiny_model_path)
    start = time.perf_counter()
    result = run_cli("run", path, "--backend", "ray", "--address", "127.0.0.1:9", "--out", tmp_path / "o")
    assert_one_line_error(result, "no Ray cluster answers at 127.0.0.1:9")
    assert time.perf_counter() - start < 30


def test_killed_study_resumes_to_the_same_report(tmp_path, tiny_model_path):
    path = write_study(tmp_path, tiny_model_path, "seeds = 2", test_count=150)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "captchalab", "run", str(path), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "cells").glob("*.json"))) < 2:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert 2 <= len(finished) < 8
    resumed = run_cli("run", path, "--out", out, "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json") if p.name in finished} == finished
    whole = run_cli("run", path, "--out", tmp_path / "whole", timeout=600)
    assert whole.returncode == 0
    assert numbers(json.loads((out / "cells.json").read_text())) == numbers(
        json.loads((tmp_path / "whole" / "cells.json").read_text())
    )


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, tiny_model_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fragile.py").write_text(
        textwrap.dedent("""
        from captchalab import render as r
        from captchalab.generator import Generator, Param, register

        @register
        class Fragile(Generator):
            name = "fragile"
            description = "Breaks at its hardest setting (test plugin)."
            params = (Param("gap", int, 8, 2, 20, "stripe gap"),)

            def at_strength(self, s):
                return {"gap": round(12 - 8 * s)}

            def render(self, text, rng, p):
                if p["gap"] < 6:
                    raise RuntimeError("too hard to draw")
                masks = [r.glyph(c, 0, 40) for c in text]
                return r.compose(masks, [(0, 0, 0)] * len(text), rng, 64, r.plain(255))
    """)
    )
    path = tmp_path / "study.toml"
    path.write_text(
        textwrap.dedent(f'''
        [study]
        seed = 1
        test_count = 4
        plugins = ["plugins"]

        [grid]
        style = ["fragile"]
        strength = [0.0, 1.0]

        [[attacker]]
        model = "{tiny_model_path}"
    ''')
    )
    result = run_cli("run", path, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out" / "cells.json").read_text())
    status = {r["strength"]: r["status"] for r in rows}
    assert status == {0.0: "done", 1.0: "failed"}
    assert "too hard to draw" in [r for r in rows if r["status"] == "failed"][0]["error"]
    assert "too hard to draw" in (tmp_path / "out" / "report.md").read_text()


def test_example_studies_are_valid(tmp_path):
    for path in sorted((REPO / "studies").glob("*.toml")):
        text = path.read_text()
        if "../models/" in text:  # needs a model the user trains first: check it with a stand-in
            continue
        study = load_study(path)
        assert build_cells(study, resolve_base=lambda a, c, h: "scratch"), path.name


def test_break_cost_is_the_fewest_labelled_captchas_whose_mean_reaches_each_threshold():
    from captchalab.study.report import break_cost

    curve = {0: (0.0, 0.1), 50: (0.3, 0.5), 200: (0.6, 0.9), 1000: (0.95, 0.93)}  # two seeds a size
    rows = [
        {"status": "done", "attacker": "old style", "train_count": n, "captcha_accuracy": a}
        for n, pair in curve.items()
        for a in pair
    ]
    rows += [{"status": "done", "attacker": "scratch", "train_count": n, "captcha_accuracy": 0.2} for n in curve]
    rows.append({"status": "failed", "attacker": "scratch", "train_count": 5000})
    by = {b["attacker"]: b for b in break_cost(rows)}
    assert by["old style"]["labelled_for_50%"] == 200  # at 50 the seeds' mean is 0.4
    assert by["old style"]["labelled_for_90%"] == 1000
    assert by["scratch"]["labelled_for_50%"] is None and by["scratch"]["labelled_for_90%"] is None
    assert by["old style"]["curve"][200] == pytest.approx(0.75)


def test_a_study_across_kinds_lets_each_attacker_read_its_own_kind(tmp_path):
    study = tmp_path / "kinds.toml"
    study.write_text(
        '[study]\nname = "kinds"\nseed = 2\ntest_count = 6\n\n[grid]\nstyle = ["slider", "rotation"]\n'
        'strength = [0.0, 1.0]\n\n[[attacker]]\nlabel = "template"\nattacker = "template"\n\n'
        '[[attacker]]\nlabel = "orientation"\nattacker = "orientation"\n\n'
        '[[attacker]]\nlabel = "locator"\nattacker = "locator"\ntrain = "shared"\nstyle = "slider"\n'
        "train_count = 40\nhparams = {budget = 80}\n"
    )
    done = run_cli("run", study, "--out", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "r" / "cells.json").read_text())
    assert sorted((r["style"], r["attacker"]) for r in rows) == [
        ("rotation", "orientation"),
        ("rotation", "orientation"),
        ("slider", "locator"),
        ("slider", "locator"),
        ("slider", "template"),
        ("slider", "template"),
    ]
    assert {(r["style"], r["kind"]) for r in rows} == {("slider", "slider"), ("rotation", "rotation")}
    # the model the study trained is a slider reader like any other: it names no character set
    model = next((tmp_path / "r" / "models").glob("*.keras"))
    assert json.loads(model.with_suffix(".json").read_text())["charset"] == ""
    attacked = run_cli("attack", "--model", model, "--style", "slider", "--count", "3", "--out", tmp_path / "a")
    assert attacked.returncode == 0, attacked.stderr
    study.write_text(study.read_text().replace('["slider", "rotation"]', '["slider", "grid3"]'))
    assert_one_line_error(run_cli("run", study, "--out", tmp_path / "r2"), "no attacker reads grid CAPTCHAs")
