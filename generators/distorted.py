from captchalab import render as r
from captchalab.charset import ALNUM
from captchalab.generator import AVOID_AMBIGUOUS, FONT_SIZE, HEIGHT, Generator, Param, register


@register
class Distorted(Generator):
    name = "distorted"
    description = "Each character rotated, scaled, sheared and wave-warped on its own."
    charset = ALNUM
    params = (
        AVOID_AMBIGUOUS,
        HEIGHT,
        FONT_SIZE,
        Param("rotate", float, 25.0, 0.0, 60.0, "largest rotation in degrees"),
        Param("scale", float, 0.15, 0.0, 0.5, "largest relative change of size"),
        Param("shear", float, 0.2, 0.0, 0.8, "largest horizontal shear"),
        Param("wave", float, 2.0, 0.0, 8.0, "wave amplitude in pixels"),
        Param("spacing", float, 1.15, 0.9, 2.0, "step to the next character, in character widths"),
    )

    def at_strength(self, s):
        return {
            "rotate": 5 + 40 * s,
            "scale": 0.05 + 0.25 * s,
            "shear": 0.05 + 0.35 * s,
            "wave": 4 * s,
            "spacing": 1.3 - 0.25 * s,
        }

    def render(self, text, rng, p):
        masks = []
        for c in text:
            m = r.glyph(c, int(rng.integers(len(r.font_paths()))), p["font_size"])
            m = r.rotate_scale(
                m,
                rng.uniform(-p["rotate"], p["rotate"]),
                1 + rng.uniform(-p["scale"], p["scale"]),
                rng.uniform(-p["shear"], p["shear"]),
            )
            m = r.wave(m, rng.uniform(0, p["wave"]), rng.uniform(12, 30), rng.uniform(0, 6.3))
            masks.append(m)
        color = r.dark_color(rng)
        h = max(p["height"], max(m.shape[0] for m in masks) + 2)
        return r.compose(masks, [color] * len(text), rng, h, r.plain(255), advance=p["spacing"], jitter_y=4)
