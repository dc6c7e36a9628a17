import functools

import numpy as np

from captchalab import render as r
from captchalab.generator import HEIGHT, Generator, Param, register


@functools.lru_cache(maxsize=2)
def _digits(split: str):
    """MNIST images of one split grouped by class (found the way `train mnist` finds them)."""
    from captchalab.data.mnist import load_mnist

    data = load_mnist()
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    return x, [np.flatnonzero(y == c) for c in range(10)]


@register
class Handwritten(Generator):
    name = "handwritten"
    description = "Real handwritten MNIST digits composed into a CAPTCHA (digits only; needs MNIST, like train mnist)."
    params = (
        Param("split", str, "test", help="MNIST split the digits come from: test or train"),
        HEIGHT,
        Param("digit_height", int, 44, 16, 120, "height of each digit in pixels"),
        Param("advance", float, 1.1, 0.5, 2.0, "step to the next digit, in digit widths"),
        Param("rotate", float, 5.0, 0.0, 45.0, "largest extra rotation in degrees"),
        Param("lines", int, 0, 0, 10, "interference lines"),
    )

    def at_strength(self, s):
        return {"advance": 1.2 - 0.45 * s, "rotate": 25 * s, "lines": round(3 * s)}

    def render(self, text, rng, p):
        if p["split"] not in ("test", "train"):
            raise ValueError(f"split must be test or train, got {p['split']!r}")
        images, by_class = _digits(p["split"])
        masks = []
        for c in text:
            choices = by_class[int(c)]
            digit = r.crop_to_ink(images[choices[int(rng.integers(len(choices)))]])
            digit = r.fit_height(digit, p["digit_height"])
            masks.append(r.rotate_scale(digit, rng.uniform(-p["rotate"], p["rotate"])))
        h = max(p["height"], max(m.shape[0] for m in masks) + 2)
        out = r.compose(masks, [(20, 20, 20)] * len(text), rng, h, r.plain(255), advance=p["advance"], jitter_y=3)
        r.interference_lines(out.image, rng, p["lines"], (40, 40, 40), 1)
        return out
