"""Tile sets for image-selection CAPTCHAs: the built-in art, and a researcher's own folder of
labelled pictures read through the safe decoder."""

import cv2
import numpy as np
import pytest

from captchalab.data.tiles import builtin_arts, load_builtin, load_tile_folder
from captchalab.errors import CaptchalabError


def tile_folder(root, classes=("bus", "car"), per_class=2):
    """A third-party tile set: real PNG and JPEG photos-to-be, one folder per class."""
    rng = np.random.default_rng(0)
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
