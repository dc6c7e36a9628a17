"""Tile sets for image-selection CAPTCHAs: the built-in art, and a researcher's own folder of
labelled pictures read through the safe decoder."""

import cv2
import numpy as np
import pytest

from captchalab.data.tiles import builtin_arts, load_builtin, load_tile_folder
from captchalab.errors import CaptchalabError


def tile_folder(root, classes=("bus", "car"), per_class=2, seed=0):
    """A third-party tile set: real PNG and JPEG photos-to-be, one folder per class."""
    rng = np.random.default_rng(seed)
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            picture = rng.integers(0, 255, (40, 40, 3), np.uint8)
            cv2.imwrite(str(root / cls / f"{i}.{'jpg' if i % 2 else 'png'}"), picture)
    return root


def test_the_built_in_art_has_every_class_in_every_style_with_its_licence():
    from captchalab.data.tiles import ART

    arts = builtin_arts()
    assert len(arts) >= 3
    for art in arts:
        tiles = load_builtin((art,))
        assert len(tiles.classes) >= 12 and "biscuit" in tiles.classes and "doughnut" in tiles.classes
        assert all(t.image.shape[2] == 4 and t.art == art for pictures in tiles.tiles.values() for t in pictures)
        assert (ART / f"{art}.LICENSE.txt").stat().st_size > 500 and (ART / f"{art}.ATTRIBUTION.txt").is_file()
    together = load_builtin(tuple(arts))
    assert together.arts == arts and len(together.tiles["biscuit"]) == len(arts)


def test_a_researchers_folder_is_read_and_unreadable_pictures_are_skipped_and_named(tmp_path):
    root = tile_folder(tmp_path / "tiles", ("bus", "car", "crosswalk"))
    (root / "bus" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "car" / "notes.txt").write_text("not a picture, not counted")
    (root / "crosswalk" / "link.png").symlink_to(root / "bus" / "0.png")
    tiles = load_tile_folder(root)
    assert tiles.classes == ["bus", "car", "crosswalk"]
    assert {len(v) for v in tiles.tiles.values()} == {2}
    assert set(tiles.skipped) == {"bus/broken.png", "crosswalk/link.png"}
    assert tiles.tiles["car"][1].image.shape == (40, 40, 4)  # the JPEG, opaque
    assert tiles.describe()["sha256"] == load_tile_folder(root).describe()["sha256"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: tile_folder(root, ("bus",)), "at least two classes"),
        (lambda root: root.mkdir(), "at least two classes"),
        (lambda root: None, "does not exist"),
    ],
)
def test_unusable_tile_folders_are_one_line_errors(tmp_path, make, message):
    make(tmp_path / "tiles")
    with pytest.raises(CaptchalabError, match=message):
        load_tile_folder(tmp_path / "tiles")


def test_an_unknown_art_style_or_class_is_named():
    with pytest.raises(CaptchalabError, match="unknown art style crayon"):
        load_builtin(("crayon",))
    with pytest.raises(CaptchalabError, match="'unicorn' is not in the tile set"):
        load_builtin(tuple(builtin_arts())).check_class("unicorn")


def test_pictures_split_into_pools_by_content_alone(tmp_path):
    """The same pictures under other names and in another order split the same way; the pools and
    the validation part never share a picture; pool_size serves the first N of a class."""
    first = tile_folder(tmp_path / "a", ("bus", "car", "hydrant"), per_class=12)
    second = tmp_path / "b"
    for cls_folder in first.iterdir():
        (second / cls_folder.name).mkdir(parents=True)
        for k, picture in enumerate(sorted(cls_folder.iterdir(), reverse=True)):
            (second / cls_folder.name / f"renamed-{k}{picture.suffix}").write_bytes(picture.read_bytes())
    split = {}
    for root in (first, second):
        whole = load_tile_folder(root)
        combos = [(pool, "all") for pool in ("all", "train", "test")]
        combos += [(pool, part) for pool in ("all", "train") for part in ("fit", "validation")]
        split[root.name] = {(pool, part): set(whole.pool(pool, part).digests()) for pool, part in combos}
    assert split["a"] == split["b"]
    pools = split["a"]
    assert not pools[("train", "all")] & pools[("test", "all")]
    assert pools[("train", "all")] | pools[("test", "all")] == pools[("all", "all")]
    assert not pools[("train", "fit")] & pools[("train", "validation")]
    assert 0.2 < len(pools[("test", "all")]) / len(pools[("all", "all")]) < 0.4  # held_out 0.3
    small = load_tile_folder(first).pool("train", size=2)
    assert {cls: len(t) for cls, t in small.tiles.items()} == {"bus": 2, "car": 2, "hydrant": 2}
    with pytest.raises(CaptchalabError, match="`pool` must be one of all, train, test"):
        load_tile_folder(first).pool("everything")
    with pytest.raises(CaptchalabError, match="too few to hold some out for validation"):
        load_tile_folder(first).pool("test", "validation")  # 4 pictures a class: they are the pool


def test_training_on_a_pool_of_pictures_validates_on_pictures_it_never_fits_on(tmp_path):
    """A split by challenge would let validation reuse the training pictures and call memory of
    the pool convergence: the model records that its validation was held out by picture."""
    import json
    import shutil

    from captchalab.attack import attack_many, both_pools
    from captchalab.attackers import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source, generate_dataset
    from conftest import run_cli

    tiles = tile_folder(tmp_path / "tiles", ("bus", "car", "hydrant"), per_class=10)
    done = run_cli("train", "captcha", "--style", "grid3", "--param", f"tiles={tiles}", "--param", "pool=train",
                   "--attacker", "tilecnn", "--count", "40", "--epochs", "1", "--from", "scratch",
                   "--out", tmp_path / "m.keras")  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "m.json").read_text())
    assert info["validation_by"] == "picture" and (info["train_count"], info["validation_count"]) == (36, 4)
    generate_dataset(GenerationSpec("grid3", 3, params={"tiles": str(tiles), "pool": "test"}), tmp_path / "new")
    manifest = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert manifest["parameters"]["pool"] == "test" and manifest["parameters"]["held_out"] == 0.3
    assert set(manifest["pictures"]["sha256"]).isdisjoint(info["pictures"]["sha256"])

    model = load_attacker(tmp_path / "m.keras")
    design = lambda folder, pool: Source(spec=GenerationSpec("grid3", 3, params={"tiles": str(folder), "pool": pool}))
    for pool in ("test", "train"):  # new pictures; the very pool it trained on, measured on purpose
        assert attack_many([model], {pool: design(tiles, pool)}, workers=0)[0]["count"] == 3
    # a report gives both: the pictures asked for, and the other pool of the same design beside them
    asked = run_cli("attack", "--model", tmp_path / "m.keras", "--style", "grid3", "--param", f"tiles={tiles}",
                    "--param", "pool=test", "--count", "3", "--workers", "0", "--out", tmp_path / "r")  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert list(report["per_style"]) == ["grid3 (new pictures)", "grid3 (same pool)"]
    other = tile_folder(tmp_path / "other", ("bus", "car", "hydrant"), per_class=3, seed=1)  # a test folder of its own
    sources = both_pools([model], {"grid3": design(other, "all")})
    assert list(sources) == ["grid3 (new pictures)", "grid3 (same pool)"]
    assert sources["grid3 (same pool)"].pictures()[0] == info["pictures"]["pool"]
    # a study's cells carry the other pool's number as a line of its own, beside the design asked for
    (tmp_path / "pools.toml").write_text(
        f'[study]\ntest_count = 2\n[grid]\nstyle = ["grid3"]\nstrength = [0.0]\n'
        f'[grid.params]\ntiles = ["{tiles}"]\npool = ["train", "test"]\n[[attacker]]\nmodel = "m.keras"\n'
    )
    ran = run_cli("run", tmp_path / "pools.toml", "--out", tmp_path / "study")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads((tmp_path / "study" / "cells.json").read_text())
    assert sorted((r["param.pool"], r["attacker"]) for r in rows) == [
        ("test", "m"), ("test", "m (same pool)"), ("train", "m"), ("train", "m (new pictures)")
    ]  # fmt: skip
    copied = tmp_path / "copied"  # another folder holding pictures it trained on
    shutil.copytree(tiles, copied)
    with pytest.raises(CaptchalabError, match="trained on .* of the pictures"):
        attack_many([model], {"copied": design(copied, "all")}, workers=0)


def test_grey_deep_and_cmyk_photographs_are_read_as_colour(tmp_path):
    """Real tile folders hold grey, 16-bit and CMYK pictures: each is read as 8-bit colour."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "bus").mkdir()
    (tmp_path / "car").mkdir()
    cv2.imwrite(str(tmp_path / "bus" / "grey.png"), rng.integers(0, 255, (40, 40), np.uint8))
    cv2.imwrite(str(tmp_path / "bus" / "deep.png"), rng.integers(0, 65535, (40, 40, 3), np.uint16))
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).convert("CMYK").save(tmp_path / "car" / "cmyk.jpg")
    tiles = load_tile_folder(tmp_path)
    assert not tiles.skipped and sum(len(t) for t in tiles.tiles.values()) == 3
    assert all(t.image.shape == (40, 40, 4) and t.image.dtype == np.uint8 for v in tiles.tiles.values() for t in v)
