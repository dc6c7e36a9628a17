"""Image-selection CAPTCHAs: "select all images with X" (grid3, nine tiles) and "select all squares
with X" (grid4, one scene cut into sixteen squares), drawn from a tile set: the built-in emoji art
(`art=`) or a researcher's own folder of labelled pictures (`tiles=DIR`, CLASS/*.png|jpg).

The answer is the set of tile indices (row by row from the top left, 0-based) showing the prompt
class, written sorted and space-separated ("0 4 7"). A grid4 square counts when the object
covers at least `coverage` of its area. A grid4 challenge records, beside its answer, each
square's coverage (`coverage`) and the same at four cells to a square's side (`coverage_map`, 16x16
shares row by row over the scene), the truth a dense reader learns from.
"""

from __future__ import annotations

import cv2

import numpy as np

from captchalab.errors import CaptchalabError
from captchalab.generation import scenes
from captchalab.generation.pictures import LOOK_ALIKES, POOL_PARAMS, pool_pictures, pool_tiles
from captchalab.generator import Challenge, Generator, Param, register
from captchalab.kinds import MAP_CELLS

GUTTER = 4  # pixels of white between grid3 tiles, as deployed grids draw them

COMMON = (
    Param(
        "prompt",
        str,
        "",
        help="the class to select, or several separated by commas (one drawn per challenge); '' = any class",
    ),
    Param("art", str, "all", help="built-in art styles to draw from, separated by commas or + (noto+fluent), or 'all'"),
    Param("tiles", str, "", help="a folder of CLASS/*.png|jpg pictures to draw from instead of the built-in art"),
    *POOL_PARAMS,
    Param("tile_size", int, 100, 32, 256, "tile (square) side in pixels"),
    Param("clutter", int, 0, 0, 6, "small objects of other classes scattered over each tile or the scene"),
    Param("occlusion", float, 0.0, 0.0, 0.7, "share of each object hidden behind a shape, at most"),
    Param("min_scale", float, 0.8, 0.2, 1.0, "smallest object size, relative to its tile"),
    Param("rotation", float, 0.0, 0.0, 180.0, "largest object rotation in degrees"),
    Param("colour_shift", float, 0.0, 0.0, 180.0, "largest hue change of an object in degrees"),
    Param("blur", float, 0.0, 0.0, 4.0, "Gaussian blur of the whole image (sigma in pixels)"),
    Param("noise", float, 0.0, 0.0, 60.0, "Gaussian noise (standard deviation in grey levels)"),
    Param("jpeg", int, 95, 10, 100, "JPEG quality of the served image (100: lossless)"),
    Param("decoys", float, 0.0, 0.0, 1.0, "chance that a non-target shows the prompt's look-alike class"),
)


def prompts(p: dict) -> list[str]:
    """The classes a design asks about ([]: any class of its tile set)."""
    return [c.strip() for c in p["prompt"].split(",") if c.strip()]


def _opaque(picture: np.ndarray) -> bool:
    return bool(picture[..., 3].min() == 255)


class GridStyle(Generator):
    kind = "grid"
    size = 3
    picture_parts = True

    def at_strength(self, s):
        return {
            "clutter": round(3 * s),
            "occlusion": round(0.4 * s, 3),
            "min_scale": round(0.8 - 0.45 * s, 3),
            "rotation": round(40 * s, 1),
            "colour_shift": round(60 * s, 1),
            "blur": round(1.2 * s, 2),
            "noise": round(15 * s, 1),
            "jpeg": int(round(95 - 55 * s)),
            "decoys": round(0.6 * s, 3),
        }

    def classes(self, p):
        return pool_tiles(p).classes

    def pictures(self, p):
        return pool_pictures(p)

    def check(self, p):
        tiles = pool_tiles(p)
        for prompt in prompts(p):
            tiles.check_class(prompt, "prompt")

    photo_reader = "detfeat"

    def reader_for(self, p):
        # photographs: start from a network pretrained on photographs (a reader learning from
        # nothing is the weak attacker); the built-in art keeps its own reader
        return self.photo_reader if p["tiles"] else self.reader

    def pick_prompt(self, tiles, rng, p) -> str:
        asked = prompts(p) or tiles.classes
        return asked[int(rng.integers(len(asked)))] if len(asked) > 1 else asked[0]

    def other_class(self, tiles, rng, p, prompt: str) -> str:
        """A non-target class: the prompt's look-alike with chance `decoys`, else any other."""
        decoy = LOOK_ALIKES.get(prompt)
        if decoy in tiles.tiles and rng.random() < p["decoys"]:
            return decoy
        others = [c for c in tiles.classes if c != prompt]
        return others[int(rng.integers(len(others)))]

    def picture(self, tiles, rng, p, cls: str, size: float) -> np.ndarray:
        """One picture of `cls`, changed as the design asks, `size` pixels on its longer side."""
        pictures = tiles.tiles[cls]
        chosen = pictures[int(rng.integers(len(pictures)))].image
        hue = rng.uniform(-p["colour_shift"], p["colour_shift"])
        turned = scenes.transformed(chosen, max(4, int(size)), rng.uniform(-p["rotation"], p["rotation"]))
        return scenes.shift_colour(turned, hue)  # after scaling: fewer pixels to turn

    def clutter(self, image, tiles, rng, p, prompt: str, side: int) -> list[str]:
        """Small objects of classes other than the prompt over the image; their classes."""
        drawn = []
        for _ in range(p["clutter"]):
            cls = self.other_class(tiles, rng, {**p, "decoys": 0.0}, prompt)
            small = self.picture(tiles, rng, p, cls, side * rng.uniform(0.15, 0.3))
            scenes.place(image, small, rng.uniform(0, image.shape[1]), rng.uniform(0, image.shape[0]), coverage=False)
            drawn.append(cls)
        return drawn

    def main_object(self, image, tiles, rng, p, cls: str, cx: float, cy: float, side: float) -> np.ndarray:
        """The object a tile or scene is about, placed and perhaps partly hidden; its visible coverage."""
        pictures = tiles.tiles[cls]
        if _opaque(pictures[0].image) and self.size == 3:  # a photo tile fills its tile
            chosen = pictures[int(rng.integers(len(pictures)))].image
            image[:] = cv2.resize(chosen[..., :3], image.shape[1::-1], interpolation=cv2.INTER_AREA)
            return np.ones(image.shape[:2], np.float32)
        picture = self.picture(tiles, rng, p, cls, side * rng.uniform(p["min_scale"], 1.0))
        coverage = scenes.place(image, picture, cx, cy)
        hidden = scenes.occluder(image, rng, cx, cy, side * 0.8, rng.uniform(0, p["occlusion"]))
        return coverage * (1 - hidden)


@register
class Grid3(GridStyle):
    name = "grid3"
    description = (
        "Select all images with X: nine tiles, each showing one object (or none) on a scene, with "
        "clutter; with replacements, a dynamic grid whose selected tiles are replaced."
    )

    params = COMMON + (
        Param("targets", int, 3, 1, 8, "tiles showing the prompt class (the fewest, with max_targets)"),
        Param(
            "max_targets",
            int,
            0,
            0,
            8,
            "the most tiles showing the prompt class, the count drawn evenly "
            "from targets..max_targets, so the count gives nothing away (0: always `targets`)",
        ),
        Param(
            "replacements",
            int,
            0,
            0,
            5,
            "a dynamic grid: tiles queued behind each position, shown in turn "
            "as selected tiles are replaced (0: a static grid)",
        ),
    )

    def check(self, p):
        super().check(p)
        if 0 < p["max_targets"] < p["targets"]:
            raise CaptchalabError(
                f"max_targets={p['max_targets']} is below targets={p['targets']}: give a range "
                "targets..max_targets, or 0 for always `targets`"
            )

    def tile(self, tiles, rng, p, prompt: str, target: bool) -> tuple[np.ndarray, dict]:
        """One tile: a scene, clutter, and the prompt's class (a target) or another class."""
        side = p["tile_size"]
        tile = scenes.scene(side, side, rng)
        drawn = self.clutter(tile, tiles, rng, p, prompt, side)
        cls = prompt if target else self.other_class(tiles, rng, p, prompt)
        self.main_object(
            tile,
            tiles,
            rng,
            p,
            cls,
            side / 2 + rng.uniform(-0.1, 0.1) * side,
            side / 2 + rng.uniform(-0.1, 0.1) * side,
            side,
        )
        return tile, {"class": cls, "clutter": drawn}

    def challenge(self, rng, p):
        tiles = pool_tiles(p)
        prompt = self.pick_prompt(tiles, rng, p)
        side, n = p["tile_size"], self.size * self.size
        count = p["targets"]
        if p["max_targets"] > count:  # drawn only for a range, so fixed-count datasets keep their bytes
            count = int(rng.integers(count, p["max_targets"] + 1))
        targets = set(rng.choice(n, count, replace=False).tolist())
        full = self.size * side + (self.size - 1) * GUTTER
        image = np.full((full, full, 3), 255, np.uint8)
        shown = []
        for k in range(n):
            tile, what = self.tile(tiles, rng, p, prompt, k in targets)
            row, col = divmod(k, self.size)
            image[
                row * (side + GUTTER) : row * (side + GUTTER) + side,
                col * (side + GUTTER) : col * (side + GUTTER) + side,
            ] = tile
            shown.append(what)
        image = scenes.degrade(image, rng, p["blur"], p["noise"], p["jpeg"])
        details, parts = {"tiles": shown}, {}
        if p["replacements"]:
            # each position's queue, one row of tiles per position; the last of each is never a
            # target, so a solver that clicks every target can always finish
            depth = p["replacements"]
            strip = np.empty((n * side, depth * side, 3), np.uint8)
            queue = []
            for k in range(n):
                row = []
                for j in range(depth):
                    tile, what = self.tile(tiles, rng, p, prompt, j < depth - 1 and rng.random() < 0.4)
                    strip[k * side : (k + 1) * side, j * side : (j + 1) * side] = tile
                    row.append(what)
                queue.append(row)
            parts["queue"] = scenes.degrade(strip, rng, p["blur"], p["noise"], p["jpeg"])
            details["queue"] = queue
        return Challenge(
            image, {"grid": self.size, "prompt": prompt}, " ".join(map(str, sorted(targets))), details, parts
        )


@register
class Grid4(GridStyle):
    name = "grid4"
    description = "Select all squares with X: one scene cut into sixteen squares, the object spanning several."
    size = 4
    # reads the scene whole into each square's coverage, the answer's own rule: 67.0% of 1,000 fresh
    # challenges where squares (answers alone) read 53.6% (docs/grids.md)
    reader = "areas"
    # and on photographs too: it measured at least as strong there as the readers on the detector's
    # pretrained features (docs/results/grid4-photos.md)
    photo_reader = "areas"
    params = COMMON + (
        Param("coverage", float, 0.05, 0.001, 0.9, "share of a square the object must cover for the square to count"),
    )

    def challenge(self, rng, p):
        tiles = pool_tiles(p)
        prompt = self.pick_prompt(tiles, rng, p)
        side = p["tile_size"]
        full = self.size * side
        image = scenes.scene(full, full, rng)
        drawn = self.clutter(image, tiles, rng, p, prompt, full)
        if p["decoys"] and LOOK_ALIKES.get(prompt) in tiles.tiles and rng.random() < p["decoys"]:
            decoy = self.picture(tiles, rng, p, LOOK_ALIKES[prompt], full * rng.uniform(0.2, 0.35))
            scenes.place(image, decoy, rng.uniform(0, full), rng.uniform(0, full), coverage=False)
            drawn.append(LOOK_ALIKES[prompt])
        # the object spans several squares and may run off the border; drawn again (rarely) until
        # enough of it shows to count in at least one square
        for _ in range(20):
            placed = image.copy()
            extent = full * rng.uniform(0.35, 0.75) * (0.5 + 0.5 * p["min_scale"])
            cx, cy = rng.uniform(0.1, 0.9) * full, rng.uniform(0.1, 0.9) * full
            coverage = self.main_object(placed, tiles, rng, p, prompt, cx, cy, extent)
            shares = coverage.reshape(self.size, side, self.size, side).mean(axis=(1, 3)).ravel()
            answer = [k for k, share in enumerate(shares) if share >= p["coverage"]]
            if answer:
                break
        else:
            raise CaptchalabError(
                f"coverage={p['coverage']}: the object never covered that much of a square in 20 tries; lower it"
            )
        image = scenes.degrade(placed, rng, p["blur"], p["noise"], p["jpeg"])
        # the same coverage, finer: MAP_CELLS cells to a square's side, row by row over the scene
        cells = cv2.resize(coverage, (MAP_CELLS * self.size,) * 2, interpolation=cv2.INTER_AREA)
        return Challenge(
            image,
            {"grid": self.size, "prompt": prompt},
            " ".join(map(str, answer)),
            {
                "coverage": [round(float(s), 4) for s in shares],
                "clutter": drawn,
                "coverage_map": [round(float(c), 3) for c in cells.ravel()],
            },
        )
