"""Few labels plus many unlabelled CAPTCHAs: the pseudo-labelling mechanics on tiny data, and the
refusals that keep its numbers honest. The accuracy it gains is measured in benchmarks/."""

import json
import shutil

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli


def test_only_confident_readings_of_the_charset_become_pseudo_labels():
    from captchalab.attackers import Reading
    from captchalab.training import confident

    readings = [
        Reading("12", [0.95, 0.99]),
        Reading("12", [0.95, 0.5]),
        Reading("", []),
        Reading("1a", [0.99, 0.99]),
        Reading("123456789", [1.0] * 9),
        Reading("7", [0.9]),
    ]
    assert confident(readings, 0.9, "0123456789", max_length=8) == [0, 5]
    assert confident(readings, 0.96, "0123456789", max_length=8) == []


def test_pseudo_labels_are_capped_per_labelled_captcha_the_most_confident_first():
    from captchalab.attackers import Reading
    from captchalab.loop import PseudoLabelling

    readings = [
        Reading("12", [0.95, 0.92]),
        Reading("34", [0.99, 0.99]),
        Reading("56", [0.5, 0.99]),
        Reading("78", [0.97, 0.96]),
        Reading("90", [0.91, 0.99]),
    ]
    assert PseudoLabelling(per_labelled=1.0).choose(readings, 2, "0123456789", 8) == [1, 3]
    assert PseudoLabelling(per_labelled=2.0).choose(readings, 2, "0123456789", 8) == [0, 1, 3, 4]
    assert PseudoLabelling(per_labelled=0.5).choose(readings, 1, "0123456789", 8) == []


def test_the_teacher_moves_a_small_step_towards_the_student():
    import keras
    from captchalab.training import mean_teacher

    inputs = keras.Input((3,))
    student = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    teacher = keras.models.clone_model(student)
    before = [w.copy() for w in teacher.get_weights()]
    target = [w.copy() for w in student.get_weights()]
    mean_teacher(student, teacher, 0.9)()
    for old, new, s in zip(before, teacher.get_weights(), target):
        assert np.allclose(new, 0.9 * old + 0.1 * s, atol=1e-6)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from captchalab.data.dataset import GenerationSpec, generate_dataset

    root = tmp_path_factory.mktemp("semi")
    generate_dataset(GenerationSpec("clean", 40, seed=1, strength=0.0), root / "labelled")
    generate_dataset(GenerationSpec("clean", 30, seed=2, strength=0.0), root / "site")  # labelled: to attack
    scraped = root / "scraped"
    scraped.mkdir()
    for png in sorted((root / "site").glob("*.png"))[:20]:
        shutil.copy(png, scraped / png.name)
    (scraped / "broken.png").write_bytes(b"\x89PNG not really")
    (scraped / "notes.txt").write_text("not an image")
    return root


def test_unlabelled_training_records_its_images_and_refuses_to_attack_them(tmp_path, folders):
    out = tmp_path / "semi.keras"
    done = run_cli(
        "train",
        "captcha",
        "--attacker",
        "ctc:filters=8,rnn_units=16,pseudo_per_labelled=3",
        "--dataset",
        folders / "labelled",
        "--unlabelled",
        folders / "scraped",
        "--budget",
        "144",
        "--from",
        "scratch",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["unlabelled"]["count"] == 20 and info["unlabelled"]["skipped"] == 1
    assert "broken.png" in info["unlabelled"]["skipped_files"]
    assert len(info["unlabelled"]["image_sha256"]) == 21 and info["labelled_count"] == 40
    assert len(info["pseudo_labelling"]["pseudo_labelled_per_epoch"]) == info["epochs_run"]
    assert info["pseudo_labelling"]["per_labelled"] == 3  # the share asked for, recorded
    # two stages: the labels alone first, then the teacher starts from that model
    assert info["supervised_stage"]["epochs_run"] == info["epochs_run"] == 4
    assert info["train_seconds"] >= info["supervised_stage"]["train_seconds"]
    refused = run_cli(
        "attack", "--model", out, "--dataset", folders / "site", "--workers", "0", "--out", tmp_path / "r"
    )
    assert_one_line_error(refused, "trained on 20 of these images")
    assert not (tmp_path / "r").exists()
    other = run_cli(
        "attack", "--model", out, "--dataset", folders / "labelled", "--workers", "0", "--out", tmp_path / "r2"
    )
    assert other.returncode == 0, other.stderr


class Interrupt(Exception):
    pass


def test_an_interrupted_semi_supervised_run_resumes_in_its_second_stage(tmp_path, folders):
    from captchalab.attackers.base import TrainSettings, make_attacker
    from captchalab.data.dataset import make_source, read_unlabelled
    from captchalab.training import checkpoint_dir
    from captchalab.train import train_attacker

    def run(out, resume=False, on_epoch=None):
        reader = make_attacker("ctc:filters=8,rnn_units=16", "0123456789")
        source = make_source(None, folders / "labelled", 0, "4", 1, 0.0, None, (), "0123456789")
        return train_attacker(
            reader,
            source,
            out,
            TrainSettings(budget=144),
            workers=0,
            resume=resume,
            on_epoch=on_epoch,
            unlabelled=read_unlabelled(folders / "scraped"),
        )

    whole = run(tmp_path / "whole.keras")
    calls = []

    def stop_in_second_stage(epoch, record):
        calls.append(epoch)
        if len(calls) == 6:  # four epochs of the labels alone, then the second of the pseudo-labelled stage
            raise Interrupt()

    out = tmp_path / "cut.keras"
    with pytest.raises(Interrupt):
        run(out, on_epoch=stop_in_second_stage)
    assert calls == [1, 2, 3, 4, 1, 2] and not out.exists()
    assert (checkpoint_dir(out) / "semi-supervised" / "state.json").is_file()
    seen = []
    resumed = run(out, resume=True, on_epoch=lambda e, r: seen.append(e))
    assert seen == [3, 4]  # neither the first stage nor the second's first epochs were redone
    # the record covers every epoch, the ones before the interruption too
    assert (
        resumed["pseudo_labelling"]["pseudo_labelled_per_epoch"]
        == whole["pseudo_labelling"]["pseudo_labelled_per_epoch"]
    )
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in whole["history"]]  # the same run
    assert not checkpoint_dir(out).exists()


@pytest.mark.parametrize(
    "which, fragment",
    [
        ("labelled", "is the labelled dataset itself"),
        ("empty", "holds no image or sound file"),
        ("unreadable", "no readable image"),
        ("missing", "does not exist"),
    ],
)
def test_bad_unlabelled_folders_are_one_line_errors(tmp_path, folders, which, fragment):
    folder = {"labelled": folders / "labelled", "missing": tmp_path / "nope"}.get(which, tmp_path / which)
    if which in ("empty", "unreadable"):
        folder.mkdir()
        if which == "unreadable":
            (folder / "a.png").write_bytes(b"junk")
            (folder / "b.jpg").write_bytes(b"")
    out = tmp_path / "m.keras"
    result = run_cli(
        "train",
        "captcha",
        "--attacker",
        "ctc:filters=8,rnn_units=16,pseudo_per_labelled=3",
        "--dataset",
        folders / "labelled",
        "--unlabelled",
        folder,
        "--budget",
        "72",
        "--from",
        "scratch",
        "--workers",
        "0",
        "--out",
        out,
    )
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_an_attacker_that_cannot_use_unlabelled_captchas_says_so(tmp_path, folders):
    result = run_cli(
        "train",
        "captcha",
        "--attacker",
        "segment",
        "--dataset",
        folders / "labelled",
        "--unlabelled",
        folders / "scraped",
        "--from",
        "scratch",
        "--out",
        tmp_path / "m.keras",
    )
    assert_one_line_error(result, "does not train on unlabelled CAPTCHAs")


def test_a_study_axis_for_the_unlabelled_count(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text(
        '[study]\nname = "semi"\ntest_count = 4\n[grid]\nstyle = ["clean"]\ntrain_count = [20]\n'
        'unlabelled_count = [0, 12]\n[[attacker]]\nattacker = "ctc:filters=8,rnn_units=16,budget=36"\n'
        'train = "cell"\nfrom = "scratch"\n'
    )
    ran = run_cli("run", study, "--out", tmp_path / "out")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads((tmp_path / "out" / "cells.json").read_text())
    assert sorted(r["unlabelled_count"] for r in rows) == [0, 12] and all(r["status"] == "done" for r in rows)
    models = [json.loads(p.read_text()) for p in (tmp_path / "out" / "models").glob("*.json")]
    assert sorted((m.get("unlabelled") or {}).get("count", 0) for m in models) == [0, 12]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {b["unlabelled_count"] for b in report["break_cost"]} == {0, 12}  # labels only: one curve each
    bad = tmp_path / "bad.toml"
    bad.write_text(study.read_text().replace("ctc:filters=8,rnn_units=16,budget=36", "segment"))
    assert_one_line_error(run_cli("run", bad), "does not train on unlabelled CAPTCHAs")


# -- image grids: a tile reader's teacher labels tiles, not challenges --------------------------


def test_a_tile_teacher_pseudo_labels_the_tiles_it_is_sure_of_in_every_class_the_surest_first():
    from captchalab.attackers import get_attacker

    reader = get_attacker("tilecnn")(hparams={"tile": 16}, info={"classes": ["bus", "car", "cat"]})
    teacher = get_attacker("tilecnn")(hparams={"tile": 16}, info={"classes": ["bus", "car", "cat"]})
    logits = np.array([[5, -5, -5], [0.5, -5, -5], [-5, -5, -5], [-3, 3, -6]], np.float32)
    teacher.input_logits = lambda x: logits[: len(x)]
    tiles = np.arange(4 * 16 * 16 * 3, dtype=np.uint8).reshape(4, 16, 16, 3)
    inputs, prompts, targets = reader.pseudo_examples(teacher, tiles, 10, 0.9)
    # tile 1's bus score (62%) is not sure: the tile stays out; tile 2 is sure it shows none of them
    assert np.array_equal(inputs, tiles[[0, 2, 3]])
    assert targets.tolist() == [[[1, 0, 0]], [[0, 0, 0]], [[0, 1, 0]]] and prompts.tolist() == [0, 0, 1]
    capped = reader.pseudo_examples(teacher, tiles, 2, 0.9)[0]
    assert np.array_equal(capped, tiles[[0, 2]])  # tile 3 is the least sure (95%)
    assert len(reader.pseudo_examples(teacher, tiles, 10, 0.999)[0]) == 0


def test_unlabelled_grid_images_are_cut_in_the_training_grid_and_one_grid_size_is_required():
    from captchalab.attackers import get_attacker
    from captchalab.errors import CaptchalabError

    reader = get_attacker("tilecnn")()
    assert reader.unlabelled_question([({"grid": 3}, "0 1"), ({"grid": 3}, "")]) == {"grid": 3, "prompt": ""}
    with pytest.raises(CaptchalabError, match="3x3, 4x4"):
        reader.unlabelled_question([({"grid": 3}, "0 1"), ({"grid": 4}, "2")])


def test_a_tile_reader_learns_from_unlabelled_challenges_without_seeing_their_answers(tmp_path):
    from test_grid import colour_tiles
    from captchalab.attackers import get_attacker
    from captchalab.data.dataset import GenerationSpec, Source, generate_dataset, read_unlabelled
    from captchalab.train import prepare_examples, prepare_unlabelled

    tiles = colour_tiles(tmp_path / "tiles")
    design = ("--style", "grid3", "--param", f"tiles={tiles}", "--param", "tile_size=32")
    # a generated folder as scraped: its labels.csv and what challenges.json records are not read
    scraped = tmp_path / "scraped"
    generate_dataset(GenerationSpec("grid3", 40, seed=7, params={"tiles": str(tiles), "tile_size": 32}), scraped)
    (scraped / "broken.png").write_bytes(b"\x89PNG not really")
    reader = get_attacker("tilecnn")(hparams={"tile": 16})
    reader.classes = ["blue", "green", "red"]
    labelled = prepare_examples(
        reader,
        Source(spec=GenerationSpec("grid3", 6, seed=1, params={"tiles": str(tiles), "tile_size": 32})),
        workers=0,
    )[0]
    prepared, info = prepare_unlabelled(reader, read_unlabelled(scraped), workers=0, train=labelled)
    assert info["count"] == 40 and info["skipped"] == 1
    assert all(p["grid"] == 3 and p["prompt"] == -1 and "tile_classes" not in p for p in prepared)

    out = tmp_path / "semi.keras"
    done = run_cli(
        "train",
        "captcha",
        *design,
        "--attacker",  # named: on a folder of pictures the default is detfeat (pretrained features)
        "tilecnn",
        "--count",
        "60",
        "--hparam",
        "tile=16",
        "--epochs",
        "3",
        "--unlabelled",
        scraped,
        "--workers",
        "0",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    assert "of their tiles, epoch by epoch" in done.stderr
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["unlabelled"]["count"] == 40 and info["pseudo_labelling"]["unit"] == "tiles"
    # the teacher starts from the labelled stage, which reads solid colours surely: it labels tiles
    per_epoch = info["pseudo_labelling"]["pseudo_labelled_per_epoch"]
    assert len(per_epoch) == info["epochs_run"] == 3 and min(per_epoch) > 0
    assert info["supervised_stage"]["epochs_run"] == 3
    attacked = run_cli("attack", "--model", out, *design, "--count", "30", "--seed", "5", "--out", tmp_path / "r")
    assert attacked.returncode == 0, attacked.stderr
    assert json.loads((tmp_path / "r" / "report.json").read_text())["char_accuracy"] >= 0.95
    refused = run_cli("attack", "--model", out, "--dataset", scraped, "--workers", "0", "--out", tmp_path / "r2")
    assert_one_line_error(refused, "trained on 40 of these images")


def test_a_grid_reader_that_cannot_use_unlabelled_challenges_says_so(tmp_path):
    from test_grid import colour_tiles
    from captchalab.data.dataset import GenerationSpec, generate_dataset

    tiles = colour_tiles(tmp_path / "tiles")
    generate_dataset(GenerationSpec("grid4", 5, seed=7, params={"tiles": str(tiles)}), tmp_path / "scraped")
    result = run_cli(
        "train",
        "captcha",
        "--style",
        "grid4",
        "--param",
        f"tiles={tiles}",
        "--attacker",
        "squares",
        "--unlabelled",
        tmp_path / "scraped",
        "--count",
        "20",
        "--out",
        tmp_path / "m.keras",
    )
    assert_one_line_error(result, "does not train on unlabelled CAPTCHAs")
