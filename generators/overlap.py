from captchalab import render as r
from captchalab.charset import ALNUM
from captchalab.generator import AVOID_AMBIGUOUS, FONT_SIZE, HEIGHT, Generator, Param, register


@register
class Overlap(Generator):
    name = "overlap"
    description = "Bold characters that touch and overlap: the classic defence against segmentation."
    charset = ALNUM
    params = (
        AVOID_AMBIGUOUS,
        HEIGHT,
        FONT_SIZE,
        Param("advance", float, 0.85, 0.4, 1.2, "step to the next character, in character widths (< 1 overlaps)"),
        Param("rotate", float, 8.0, 0.0, 45.0, "largest rotation in degrees"),
    )

    def at_strength(self, s):
        return {"advance": 0.97 - 0.32 * s, "rotate": 4 + 12 * s}

    def render(self, text, rng, p):
        bold = [1, 3]  # DejaVuSans-Bold, DejaVuSerif-Bold
        masks = [
            r.rotate_scale(
                r.glyph(c, bold[int(rng.integers(2))], p["font_size"]), rng.uniform(-p["rotate"], p["rotate"])
            )
            for c in text
        ]
        return r.compose(
            masks, [r.dark_color(rng, 60)] * len(text), rng, p["height"], r.plain(255), advance=p["advance"], jitter_y=3
        )
