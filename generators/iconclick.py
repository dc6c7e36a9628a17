"""Icon click-in-order CAPTCHAs, as GeeTest's icon click serves them: a scene with a few target
icons among decoys, scattered, turned, scaled and recoloured; the strip beside it shows the
targets in the order to click them, drawn another way (by default in another art style). The
answer is each target's box in click order (kind "click": docs/click.md).

What `strength` draws (docs/click.md keeps the same table):
- 0: 3 targets and 2 decoys of other classes, upright, one size, true colours, apart, a plain
  scene: any matcher finds them.
- 0.5: 3 targets and 5 decoys, half of them the targets' look-alikes (a taxi beside the car),
  turned up to 30 degrees, sizes within 20%, hues turned up to 45 degrees, covering each other up
  to 15%, 10 clutter strokes, light noise, JPEG 75.
- 1: 3 targets and 8 decoys, all look-alikes where the art has one, turned up to 60 degrees,
  sizes within 40%, hues up to 90 degrees, overlap up to 30%, 20 strokes, noise 10, JPEG 55.
"""

from __future__ import annotations

import numpy as np

from captchalab.errors import CaptchalabError
from captchalab.generation import clicks, scenes
from captchalab.generation.pictures import LOOK_ALIKES, pool_tiles
from captchalab.generator import Challenge, Generator, Param, register
from captchalab.kinds import format_boxes


@register
class IconClick(Generator):
    name = "iconclick"
    kind = "click"
    description = (
        "Click the icons in the order the strip shows: targets among decoys on a scene (GeeTest's icon click)."
    )
    params = (
        Param("width", int, 320, 160, 800, "scene width in pixels"),
        Param("height", int, 200, 100, 600, "scene height in pixels"),
        Param("targets", int, 3, 1, 6, "icons to click, in order"),
        Param("decoys", int, 2, 0, 16, "other icons in the scene (of classes that are not targets)"),
        Param("lookalikes", float, 0.0, 0.0, 1.0, "share of decoys drawn from the targets' look-alike classes"),
        Param("size", int, 44, 20, 120, "icon size in pixels (longer side)"),
        Param("scale", float, 0.0, 0.0, 0.6, "icon sizes vary within this share of `size`"),
        Param("rotation", float, 0.0, 0.0, 180.0, "largest icon rotation in degrees"),
        Param("colour_shift", float, 0.0, 0.0, 180.0, "largest hue change of an icon in degrees"),
        Param("overlap", float, 0.0, 0.0, 0.6, "largest share of an icon's box another may cover"),
        Param("clutter", int, 0, 0, 40, "strokes and blots scattered over the scene"),
        Param("noise", float, 0.0, 0.0, 60.0, "Gaussian noise (standard deviation in grey levels)"),
        Param("jpeg", int, 95, 10, 100, "JPEG quality of the served scene (100: lossless)"),
        Param(
            "prompt",
            str,
            "other",
            help="how the strip draws the targets: other (another art style), same, silhouette or outline",
        ),  # fmt: skip
        Param("art", str, "all", help="built-in art styles the scene draws from, separated by commas or +, or 'all'"),
        Param("tiles", str, "", help="a folder of CLASS/*.png pictures to draw from instead of the built-in art"),
    )

    def at_strength(self, s):
        return {
            "decoys": round(2 + 6 * s),
            "lookalikes": round(s, 3),
            "scale": round(0.4 * s, 3),
            "rotation": round(60 * s, 1),
            "colour_shift": round(90 * s, 1),
            "overlap": round(0.3 * s, 3),
            "clutter": round(20 * s),
            "noise": round(10 * s, 1),
            "jpeg": int(round(95 - 40 * s)),
        }

    def tiles(self, p):
        return pool_tiles({**p, "pool": "all", "part": "all", "held_out": 0.3, "pool_size": 0})

    def check(self, p):
        if p["prompt"] not in clicks.PROMPT_DRAWINGS:
            raise CaptchalabError(f"prompt={p['prompt']!r}: use one of {', '.join(clicks.PROMPT_DRAWINGS)}")
        tiles = self.tiles(p)
        if p["targets"] > len(tiles.classes):
            raise CaptchalabError(f"targets={p['targets']}: the art holds {len(tiles.classes)} classes")
        clicks.check_room(p, 1.0, "icons")

    def challenge(self, rng, p):
        tiles = self.tiles(p)
        classes = tiles.classes
        targets = [classes[i] for i in rng.permutation(len(classes))[: p["targets"]]]
        others = [c for c in classes if c not in targets]
        alike = [LOOK_ALIKES[t] for t in targets if LOOK_ALIKES.get(t) in others]
        decoys = []
        for _ in range(p["decoys"]):
            pool = alike if alike and rng.random() < p["lookalikes"] else others
            decoys.append(pool[int(rng.integers(len(pool)))])
        image = scenes.scene(p["height"], p["width"], rng)
        clicks.clutter(image, rng, p["clutter"], p["size"])  # strokes and blots a detector must not take for icons
        chosen = {}  # the picture each target shows in the scene (the strip draws it another way)
        drawn, names = [], []
        for k in rng.permutation(len(targets) + len(decoys)):  # the order they are laid (later on top)
            cls = (targets + decoys)[k]
            pictures = tiles.tiles[cls]
            picture = pictures[int(rng.integers(len(pictures)))]
            if k < len(targets):
                chosen[cls] = picture
            size = p["size"] * (1 + rng.uniform(-p["scale"], p["scale"]))
            turned = scenes.transformed(picture.image, max(8, int(size)), rng.uniform(-p["rotation"], p["rotation"]))
            drawn.append(scenes.shift_colour(turned, rng.uniform(-p["colour_shift"], p["colour_shift"])))
            names.append((k, cls))
        boxes = clicks.scatter(image, drawn, rng, p["overlap"])
        by_index = {k: box for (k, _), box in zip(names, boxes)}
        image = scenes.degrade(image, rng, 0.0, p["noise"], p["jpeg"])
        items = [clicks.drawn_as(self.prompt_picture(tiles, chosen[t], rng, p["prompt"]), p["prompt"]) for t in targets]
        return Challenge(
            image,
            {"prompt": "", "count": len(targets), "size": [p["width"], p["height"]]},
            format_boxes([by_index[k] for k in range(len(targets))]),
            {
                "targets": targets,
                "objects": [[cls, *by_index[k]] for k, cls in sorted(names)],
            },
            {"strip": clicks.strip(items)},
        )

    def prompt_picture(self, tiles, shown, rng, how: str) -> np.ndarray:
        """The picture the strip shows for a target drawn as `shown` in the scene: with `other`,
        another drawing of its class (another art style) where there is one."""
        if how != "other":
            return shown.image
        others = [t for t in tiles.tiles[shown.cls] if t.art != shown.art] or [
            t for t in tiles.tiles[shown.cls] if t.name != shown.name
        ]
        return others[int(rng.integers(len(others)))].image if others else shown.image
