from captchalab import render as r
from captchalab.charset import ALNUM
from captchalab.generator import AVOID_AMBIGUOUS, FONT_SIZE, HEIGHT, Generator, Param, register


@register
class Noisy(Generator):
    name = "noisy"
    description = "Coloured characters on a textured background, crossed by lines and arcs, with dot noise."
    charset = ALNUM
    params = (
        AVOID_AMBIGUOUS,
        HEIGHT,
        FONT_SIZE,
        Param("lines", int, 3, 0, 20, "interference lines across the image"),
        Param("arcs", int, 1, 0, 20, "interference arcs"),
        Param("thickness", int, 1, 1, 4, "line and arc thickness in pixels"),
        Param("dots", float, 0.03, 0.0, 0.3, "fraction of pixels turned into coloured dots"),
        Param("texture", float, 60.0, 0.0, 200.0, "colour range of the background texture"),
        Param("spacing", float, 1.3, 1.0, 2.0, "step to the next character, in character widths"),
    )

    def at_strength(self, s):
        return {
            "lines": round(1 + 6 * s),
            "arcs": round(3 * s),
            "thickness": 1 + round(s),
            "dots": 0.005 + 0.06 * s,
            "texture": 20 + 120 * s,
        }

    def render(self, text, rng, p):
        masks = [
            r.rotate_scale(r.glyph(c, int(rng.integers(len(r.font_paths()))), p["font_size"]), rng.uniform(-10, 10))
            for c in text
        ]
        colors = [r.dark_color(rng, 110) for _ in text]
        low = int(255 - p["texture"])
        background = lambda h, w: r.textured_canvas(h, w, rng, low, 255)
        out = r.compose(masks, colors, rng, p["height"], background, advance=p["spacing"], jitter_y=4)
        line_color = r.dark_color(rng, 120)
        r.interference_lines(out.image, rng, p["lines"], line_color, p["thickness"])
        r.arcs(out.image, rng, p["arcs"], line_color, p["thickness"])
        r.dots(out.image, rng, p["dots"])
        return out
