"""Rotation CAPTCHAs ("turn the picture upright"): a round picture with a clear up, turned by an
unknown angle. The answer is the clockwise turn in whole degrees, [0, 360), that makes it
upright. Pictures have an up: an object standing on the ground under a sky (the built-in art or
a folder of your photos), or a word; content that looks the same when turned is avoided. With
`scene=texture` objects stand on soft patches instead, so that the object alone tells up.
"""

from __future__ import annotations

import cv2
import numpy as np

from captchalab.errors import CaptchalabError
from captchalab.generation import scenes
from captchalab.generation.pictures import POOL_PARAMS, pool_pictures, pool_tiles
from captchalab.generator import Challenge, Generator, Param, register
from captchalab.render import font_paths

WORDS = ("upright", "hello", "login", "verify", "human", "garden", "window", "river", "market", "yellow")


def upright_scene(size: int, rng: np.random.Generator) -> np.ndarray:
    """Sky above ground: lighter at the top, a horizon somewhere in the lower half."""
    sky, ground = rng.integers(150, 255, 3), rng.integers(20, 140, 3)
    horizon = rng.uniform(0.5, 0.8) * size
    t = np.clip((np.arange(size)[:, None] - horizon) / (0.06 * size) + 0.5, 0, 1)[..., None]
    return (sky * (1 - t) + ground * t).astype(np.float32).astype(np.uint8) * np.ones((1, size, 1), np.uint8)


@register
class Rotation(Generator):
    name = "rotation"
    kind = "rotation"
    picture_parts = True
    description = (
        "Turn the picture upright: a round picture with a clear up (an object on the ground, or a word), turned."
    )
    params = (
        Param("size", int, 160, 48, 512, "diameter of the round picture in pixels"),
        Param("content", str, "mixed", help="objects (art standing on a scene), words, or mixed"),
        Param(
            "scene",
            str,
            "horizon",
            help="behind objects: horizon (a lighter sky above the ground, itself a "
            "clue to up) or texture (soft patches with no up: only the object tells)",
        ),
        Param("art", str, "all", help="built-in art styles for objects, separated by commas or + (or 'all')"),
        Param("tiles", str, "", help="a folder of CLASS/*.png|jpg pictures (photos: shown as they are) instead"),
        *POOL_PARAMS,
        Param("crop", float, 1.0, 0.5, 1.0, "share of the picture's diameter shown (less: less context)"),
        Param("colour_shift", float, 0.0, 0.0, 180.0, "largest hue change in degrees"),
        Param("blur", float, 0.0, 0.0, 4.0, "Gaussian blur (sigma in pixels)"),
        Param("noise", float, 0.0, 0.0, 60.0, "Gaussian noise (standard deviation in grey levels)"),
        Param("jpeg", int, 95, 10, 100, "JPEG quality (100: lossless)"),
    )

    def at_strength(self, s):
        return {
            "crop": round(1.0 - 0.4 * s, 3),
            "colour_shift": round(60 * s, 1),
            "blur": round(1.0 * s, 2),
            "noise": round(15 * s, 1),
            "jpeg": int(round(95 - 50 * s)),
        }

    def check(self, p):
        if p["content"] not in ("objects", "words", "mixed"):
            raise CaptchalabError(f"content={p['content']!r}: use objects, words or mixed")
        if p["scene"] not in ("horizon", "texture"):
            raise CaptchalabError(f"scene={p['scene']!r}: use horizon or texture")
        if p["content"] != "words":
            self.tile_set(p)

    def tile_set(self, p):
        return pool_tiles(p)  # the same tile sets, and pools of them, as the image grids

    def pictures(self, p):
        return ({}, []) if p["content"] == "words" else pool_pictures(p)

    def picture(self, rng, p) -> tuple[np.ndarray, str]:
        size = p["size"]
        use_words = p["content"] == "words" or (p["content"] == "mixed" and rng.random() < 0.3)
        if use_words:
            from PIL import Image, ImageDraw, ImageFont

            word = WORDS[int(rng.integers(len(WORDS)))]
            canvas = Image.fromarray(scenes.scene(size, size, rng)[..., ::-1].copy())
            font = ImageFont.truetype(font_paths()[int(rng.integers(len(font_paths())))], size // 5)
            draw = ImageDraw.Draw(canvas)
            box = draw.textbbox((0, 0), word, font=font)
            colour = tuple(int(c) for c in rng.integers(0, 90, 3))
            draw.text(((size - box[2]) / 2, (size - box[3]) / 2), word, font=font, fill=colour)
            return np.asarray(canvas)[..., ::-1].copy(), f"word:{word}"
        tiles = self.tile_set(p)
        cls = tiles.classes[int(rng.integers(len(tiles.classes)))]
        chosen = tiles.tiles[cls][int(rng.integers(len(tiles.tiles[cls])))]
        if chosen.image[..., 3].min() == 255:  # a photo: shown as it is
            return cv2.resize(chosen.image[..., :3], (size, size), interpolation=cv2.INTER_AREA), f"{cls}/{chosen.name}"
        image = upright_scene(size, rng) if p["scene"] == "horizon" else scenes.smooth_texture(size, size, rng)
        art = scenes.shift_colour(
            scenes.transformed(chosen.image, int(size * rng.uniform(0.45, 0.65)), 0.0),
            rng.uniform(-p["colour_shift"], p["colour_shift"]),
        )
        # the object stands on the ground, a little below the centre
        scenes.place(image, art, size / 2 + rng.uniform(-0.08, 0.08) * size, size * rng.uniform(0.5, 0.6))
        return image, f"{cls}/{chosen.name}"

    def challenge(self, rng, p):
        size = p["size"]
        picture, source = self.picture(rng, p)
        angle = int(rng.integers(360))
        # turned counter-clockwise by `angle`: a clockwise turn of `angle` makes it upright
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0 / p["crop"])
        turned = cv2.warpAffine(picture, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((size, size), np.uint8)
        cv2.circle(mask, (size // 2, size // 2), size // 2 - 1, 255, -1, cv2.LINE_AA)
        weight = mask[..., None].astype(np.float32) / 255.0
        image = (turned * weight + 255 * (1 - weight)).astype(np.uint8)
        image = scenes.degrade(image, rng, p["blur"], p["noise"], p["jpeg"])
        return Challenge(image, {}, str(angle), {"picture": source, "symmetry": 1})
