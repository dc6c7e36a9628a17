from captchalab import render as r
from captchalab.charset import ALNUM
from captchalab.generator import AVOID_AMBIGUOUS, FONT_SIZE, HEIGHT, Generator, Param, register


@register
class Clean(Generator):
    name = "clean"
    description = "Well-spaced dark characters on a plain white background: the easy baseline."
    charset = ALNUM
    params = (
        AVOID_AMBIGUOUS,
        HEIGHT,
        FONT_SIZE,
        Param("spacing", float, 1.5, 1.05, 3.0, "step to the next character, in character widths"),
        Param("jitter", float, 0.0, 0.0, 20.0, "random vertical offset in pixels"),
        Param("fonts", int, 1, 1, 7, "how many of the bundled fonts to draw from"),
    )

    def at_strength(self, s):
        return {"jitter": 5 * s, "fonts": 1 + round(6 * s), "spacing": 1.5 - 0.3 * s}

    def render(self, text, rng, p):
        font = lambda: int(rng.integers(p["fonts"]))
        masks = [r.glyph(c, font(), p["font_size"]) for c in text]
        return r.compose(
            masks, [(0, 0, 0)] * len(text), rng, p["height"], r.plain(255), advance=p["spacing"], jitter_y=p["jitter"]
        )
