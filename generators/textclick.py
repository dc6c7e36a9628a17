"""Text click-in-order CAPTCHAs, as GeeTest's text click serves them ("click 春 夏 秋 in order"):
characters drawn over a scene, turned and coloured, among decoy characters and clutter; the page
names the targets in words (the question's `prompt`) and shows them in a plain strip. The answer
is each target's box in click order (kind "click": docs/click.md).

`chars`: `latin` (capital letters, drawn with DejaVu, which ships with matplotlib), `cjk` (100
common Chinese characters, drawn with a Noto CJK font from Debian's fonts-noto-cjk, OFL), or the
characters themselves ("春夏秋冬"). A set the font cannot draw is refused in one line, as is `cjk`
where no CJK font is installed. The manifest records the font file's name and hash.

What `strength` draws (docs/click.md keeps the same table):
- 0: 3 targets and 2 decoy characters, upright, one size, dark on a plain scene, apart.
- 0.5: 3 targets and 4 decoys, turned up to 35 degrees, sizes within 20%, bright colours with a
  light rim, overlapping up to 10%, 10 clutter strokes, light noise, JPEG 75.
- 1: 3 targets and 6 decoys, turned up to 70 degrees, sizes within 40%, colours close to the
  scene's, overlap up to 20%, 20 strokes, noise 10, JPEG 55.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from captchalab.errors import CaptchalabError
from captchalab.generation import clicks, scenes
from captchalab.generation.render import cjk_font_paths, font_glyph, font_paths, undrawable
from captchalab.generator import Challenge, Generator, Param, register
from captchalab.kinds import format_boxes
from captchalab.manifest import sha256_bytes

LATIN = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O left out: a page's font draws them like 1 and 0
CJK = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对"
    "可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同"
    "三已老从动两长知民样现分将外但身"
)


@register
class TextClick(Generator):
    name = "textclick"
    kind = "click"
    description = (
        "Click the characters in the order the page names them: characters over a scene (GeeTest's text click)."
    )
    params = (
        Param("width", int, 320, 160, 800, "scene width in pixels"),
        Param("height", int, 200, 100, 600, "scene height in pixels"),
        Param("targets", int, 3, 1, 6, "characters to click, in order"),
        Param("decoys", int, 2, 0, 16, "other characters in the scene"),
        Param("chars", str, "latin", help="latin, cjk (Chinese; needs fonts-noto-cjk), or the characters themselves"),
        Param("size", int, 36, 16, 100, "character height in pixels"),
        Param("scale", float, 0.0, 0.0, 0.6, "character sizes vary within this share of `size`"),
        Param("rotation", float, 0.0, 0.0, 180.0, "largest character rotation in degrees"),
        Param(
            "colour",
            float,
            0.0,
            0.0,
            1.0,
            "0: dark characters; 0.5: bright with a light rim; 1: colours near the scene's",
        ),
        Param("overlap", float, 0.0, 0.0, 0.6, "largest share of a character's box another may cover"),
        Param("clutter", int, 0, 0, 40, "strokes and blots scattered over the scene"),
        Param("noise", float, 0.0, 0.0, 60.0, "Gaussian noise (standard deviation in grey levels)"),
        Param("jpeg", int, 95, 10, 100, "JPEG quality of the served scene (100: lossless)"),
    )

    def at_strength(self, s):
        return {
            "decoys": round(2 + 4 * s),
            "scale": round(0.4 * s, 3),
            "rotation": round(70 * s, 1),
            "colour": round(s, 3),
            "overlap": round(0.2 * s, 3),
            "clutter": round(20 * s),
            "noise": round(10 * s, 1),
            "jpeg": int(round(95 - 40 * s)),
        }

    def alphabet(self, p) -> tuple[str, str]:
        """(the characters drawn from, the font file drawing them), or a one-line error."""
        if p["chars"] == "cjk" or (p["chars"] not in ("latin",) and any(ord(c) > 0x2E7F for c in p["chars"])):
            fonts = cjk_font_paths()
            if not fonts:
                raise CaptchalabError(
                    "Chinese characters need a CJK font; install Debian's fonts-noto-cjk "
                    "(apt-get install fonts-noto-cjk), or use chars=latin"
                )
            font = next((f for f in fonts if "Sans" in Path(f).name and "Bold" in Path(f).name), fonts[0])
        else:
            font = font_paths()[1]  # DejaVu Sans Bold
        chars = {"latin": LATIN, "cjk": CJK}.get(p["chars"], p["chars"])
        return "".join(dict.fromkeys(chars)), font

    def check(self, p):
        chars, font = self.alphabet(p)
        missing = undrawable(font, chars)
        if missing:
            raise CaptchalabError(f"the font {Path(font).name} cannot draw {missing[:10]!r}: it would draw boxes")
        if any(c.isspace() or not c.isprintable() for c in chars):
            raise CaptchalabError("chars must be printable characters without spaces")
        if p["targets"] + p["decoys"] > len(chars):
            raise CaptchalabError(
                f"{p['targets']} targets and {p['decoys']} decoys need that many different "
                f"characters; chars holds {len(chars)}"
            )
        clicks.check_room(p, 1.3, "characters")

    def resources(self, p):
        _, font = self.alphabet(p)
        return {"font": Path(font).name, "font_sha256": sha256_bytes(Path(font).read_bytes())}

    def character(self, font, char, size, rng, p, background) -> np.ndarray:
        """One character as a BGRA picture: its colour by `colour`, with a light rim from 0.5 on."""
        mask = font_glyph(font, char, max(8, int(size)))
        rim = 2 if p["colour"] >= 0.25 else 0
        mask = np.pad(mask, rim + 1)
        if p["colour"] < 0.25:
            colour = rng.integers(0, 70, 3)
        elif p["colour"] < 0.75:
            colour = rng.integers(0, 256, 3)
            colour[int(rng.integers(3))] = 255  # bright
        else:  # near the scene's own colour: found by shape, not by contrast
            colour = np.clip(background + rng.integers(-70, 71, 3), 0, 255)
        out = np.zeros((*mask.shape, 4), np.uint8)
        if rim:
            halo = cv2.dilate(mask, np.ones((2 * rim + 1, 2 * rim + 1), np.uint8))
            out[..., :3] = 245
            out[..., 3] = halo
        ink = mask.astype(np.float32)[..., None] / 255.0
        out[..., :3] = (ink * colour + (1 - ink) * out[..., :3]).astype(np.uint8)
        out[..., 3] = np.maximum(out[..., 3], mask)
        return out

    def challenge(self, rng, p):
        chars, font = self.alphabet(p)
        picked = [chars[i] for i in rng.permutation(len(chars))[: p["targets"] + p["decoys"]]]
        targets = picked[: p["targets"]]
        image = scenes.scene(p["height"], p["width"], rng)
        clicks.clutter(image, rng, p["clutter"], p["size"])
        background = np.array(cv2.mean(image)[:3])
        order = rng.permutation(len(picked))  # the order they are laid (later on top)
        drawn = []
        for k in order:
            size = p["size"] * (1 + rng.uniform(-p["scale"], p["scale"]))
            picture = self.character(font, picked[k], size, rng, p, background)
            drawn.append(scenes.transformed(picture, max(8, int(size)), rng.uniform(-p["rotation"], p["rotation"])))
        boxes = dict(zip(order.tolist(), clicks.scatter(image, drawn, rng, p["overlap"])))
        image = scenes.degrade(image, rng, 0.0, p["noise"], p["jpeg"])
        plain = [font_glyph(font, c, 30) for c in targets]
        items = [np.dstack([np.full((*m.shape, 3), 30, np.uint8), m]) for m in plain]
        return Challenge(
            image,
            {"prompt": "".join(targets), "count": len(targets), "size": [p["width"], p["height"]]},
            format_boxes([boxes[k] for k in range(len(targets))]),
            {"targets": targets, "objects": [[picked[k], *boxes[k]] for k in range(len(picked))]},
            {"strip": clicks.strip(items)},
        )
