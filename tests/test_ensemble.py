"""`captchalab ensemble`: several trained readers of one attacker as one model whose scores are
the mean of theirs, with a verdict that is converged only when every member's is."""

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from test_grid import colour_tiles


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    from captchalab.attackers import TrainSettings, get_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.train import train_attacker

    root = tmp_path_factory.mktemp("ensemble")
    tiles = colour_tiles(root / "tiles")
    paths = []
    for seed in (1, 2):
        path = root / f"m{seed}.keras"
        source = Source(spec=GenerationSpec("grid3", 60, seed=seed, params={"tiles": str(tiles), "tile_size": 32}))
        train_attacker(
            get_attacker("tilecnn")(hparams={"tile": 16}), source, path, TrainSettings(epochs=2, seed=seed), workers=0
        )
        paths.append(path)
    return root, tiles, paths


def test_an_ensemble_reads_with_the_mean_of_its_members_scores_and_says_what_they_were(tmp_path, members):
    from captchalab.attackers.base import load_attacker

    root, tiles, paths = members
    out = tmp_path / "e.keras"
    made = run_cli("ensemble", "--model", paths[0], "--model", paths[1], "--out", out)
    assert made.returncode == 0, made.stderr
    # two epochs on 54 challenges decide nothing: neither member converged, so neither does it
    assert "NOT converged, so a lower bound: member 1:" in made.stderr
    info = json.loads(out.with_suffix(".json").read_text())
    assert [m["model"] for m in info["ensemble"]["members"]] == [str(p) for p in paths]
    assert all(len(m["sha256"]) == 64 for m in info["ensemble"]["members"])
    assert info["convergence"]["converged"] is False and info["attacker"] == "tilecnn"
    ensemble, first, second = (load_attacker(p) for p in (out, *paths))
    x = np.random.default_rng(0).random((6, 16, 16, 3)).astype(np.float32)
    assert np.allclose(ensemble.input_logits(x), (first.input_logits(x) + second.input_logits(x)) / 2, atol=1e-4)
    attacked = run_cli(
        "attack",
        "--model",
        out,
        "--style",
        "grid3",
        "--param",
        f"tiles={tiles}",
        "--param",
        "tile_size=32",
        "--count",
        "20",
        "--seed",
        "5",
        "--workers",
        "0",
        "--out",
        tmp_path / "r",
    )
    assert attacked.returncode == 0, attacked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["per_attacker"]["e (tilecnn)"]["state"]["lower_bound"] is True
    # explore shows its tiles' probabilities; its layers are its members', inside them
    import cv2
    from starlette.testclient import TestClient
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.explore.server import Explorer, create_app

    sample = Source(spec=GenerationSpec("grid3", 1, seed=4, params={"tiles": str(tiles), "tile_size": 32})).sample(0)
    view = (
        TestClient(create_app(Explorer([str(out)])))
        .post(
            f"/api/captcha/m0?grid=3&prompt={sample.question['prompt']}",
            content=cv2.imencode(".png", sample.image)[1].tobytes(),
        )
        .json()
    )
    assert len(view["tiles"]) == 9 and view["tile"]["layers"] == {}


def test_an_ensemble_of_converged_members_is_converged_and_keeps_what_they_saw_unlabelled(tmp_path, members):
    _, _, paths = members
    copies = []
    for k, path in enumerate(paths):
        copy = tmp_path / f"c{k}.keras"
        shutil.copy(path, copy)
        info = json.loads(path.with_suffix(".json").read_text())
        info["convergence"] = {"converged": True, "reasons": []}
        info["unlabelled"] = {"folder": f"scraped{k}", "image_sha256": [f"{k}" * 64]}
        copy.with_suffix(".json").write_text(json.dumps(info))
        copies.append(copy)
    out = tmp_path / "e.keras"
    made = run_cli("ensemble", "--model", copies[0], "--model", copies[1], "--out", out)
    assert made.returncode == 0 and "every one converged" in made.stderr, made.stderr
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["convergence"]["converged"] is True
    assert info["unlabelled"]["image_sha256"] == ["0" * 64, "1" * 64]  # attack refuses what any member saw


@pytest.mark.parametrize(
    "change, message",
    [
        ("one", "needs at least two --model"),
        ("classes", "differs from"),
        ("attacker", "does not declare that its scores can be averaged"),
        ("member", "is one of the members"),
        ("exists", "already exists"),
    ],
)
def test_bad_ensembles_are_one_line_errors_and_write_nothing(tmp_path, members, change, message):
    _, _, paths = members
    other = tmp_path / "other.keras"
    shutil.copy(paths[1], other)
    info = json.loads(paths[1].with_suffix(".json").read_text())
    if change == "classes":
        info["classes"] = ["blue", "green", "yellow"]
    other.with_suffix(".json").write_text(json.dumps(info))
    first = paths[0]
    if change == "attacker":  # a reader that does not declare it (tiles would; squares does not)
        first = tmp_path / "squares.keras"
        shutil.copy(paths[0], first)
        first.with_suffix(".json").write_text(json.dumps({**info, "attacker": "squares", "hyperparameters": {}}))
    out = {"member": other, "exists": tmp_path / "old.keras"}.get(change, tmp_path / "e.keras")
    if change == "exists":
        out.write_bytes(b"old")
    models = ["--model", first] + ([] if change == "one" else ["--model", other])
    result = run_cli("ensemble", *models, "--out", out)
    assert_one_line_error(result, message)
    assert not (tmp_path / "e.keras").exists() and not (tmp_path / "e.json").exists()
    if change == "exists":
        assert out.read_bytes() == b"old"


def test_ctc_readers_make_an_ensemble_of_their_per_step_scores(tmp_path):
    from captchalab.attackers import get_attacker, load_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.ensemble import ensemble_models

    paths = []
    for seed in (1, 2):  # two networks as a trained ctc saves them (untrained: the arithmetic is the point)
        reader = get_attacker("ctc")("0123456789", {"filters": 8, "rnn_units": 16})
        path = tmp_path / f"ctc{seed}.keras"
        reader.build(seed).save(path)
        info = {
            "attacker": "ctc",
            "charset": "0123456789",
            "hyperparameters": reader.hparams,
            "input": reader.geometry(),
        }
        path.with_suffix(".json").write_text(json.dumps(info))
        paths.append(path)
    ensemble_models(paths, tmp_path / "e.keras")
    ensemble, first, second = (load_attacker(p) for p in (tmp_path / "e.keras", *paths))
    images = [Source(spec=GenerationSpec("clean", 3, 4, 4, "0123456789", 9)).sample(i).image for i in range(3)]
    prepared = [ensemble.prepare(image, None) for image in images]
    x = ensemble.network_input(np.stack(prepared))
    mean = (first.model(x).numpy() + second.model(x).numpy()) / 2
    assert np.allclose(ensemble.model(x).numpy(), mean, atol=1e-4)  # the mean of their logits, step by step
    assert [r.text for r in ensemble.read(images)] == [r.text for r in ensemble.read_prepared(prepared)]


def test_a_trained_ctc_reads_through_several_views_when_asked_and_nothing_else_changes_on_loading(tmp_path):
    from captchalab.attackers import get_attacker, load_attacker

    reader = get_attacker("ctc")("0123456789", {"filters": 8, "rnn_units": 16})
    path = tmp_path / "m.keras"
    reader.build(1).save(path)
    info = {"attacker": "ctc", "charset": "0123456789", "hyperparameters": reader.hparams, "input": reader.geometry()}
    path.with_suffix(".json").write_text(json.dumps(info))
    viewed = load_attacker(f"{path}:tta=3")
    assert viewed.hparams["tta"] == 3 and viewed.label() == "m:tta=3 (ctc)"
    image = np.full((30, 90, 3), 255, np.uint8)
    assert len(viewed.read([image, image])) == 2
    done = run_cli(
        "attack", "--model", f"{path}:filters=16", "--style", "clean", "--count", "2", "--out", tmp_path / "r"
    )
    assert_one_line_error(done, "filters is fixed when a ctc model is trained (settable when loaded: tta)")
