"""Arithmetic CAPTCHAs: an expression such as "14+21=?" drawn in the text styles' fonts; the answer
is its value (the `arithmetic` kind scores by value). What strength 0, 0.5 and 1 draw is defined in
docs/arithmetic.md and kept: the published targets are measured at that definition."""

import cv2
import numpy as np

from captchalab import render as r
from captchalab.errors import CaptchalabError
from captchalab.generator import FONT_SIZE, Generator, Param, register
from captchalab.kinds import expression_value
from captchalab.kinds.arithmetic import OPERATORS

TRIES = 64  # redraws of an expression whose value is not a whole number (or is negative)


@register
class Math(Generator):
    name = "math"
    kind = "arithmetic"
    reader = "ctc"  # tokens turned and framed, digits touching: a reader that does not segment
    description = "An arithmetic expression (operands, operators, '=?'); the answer is its value."
    charset = "0123456789" + "".join(OPERATORS) + "=?"
    max_length = 12
    params = (
        Param("height", int, 50, 24, 160, "image height in pixels"),
        Param("font_size", int, 36, FONT_SIZE.low, FONT_SIZE.high, "font size in pixels"),
        Param("low", int, 0, 0, 999, "smallest operand"),
        Param("high", int, 20, 1, 999, "largest operand"),
        Param("operands", int, 2, 2, 3, "how many operands"),
        Param("operators", str, "+-×", help="operators drawn from: any of + - x × ÷ (÷ gives whole values only)"),
        Param("equals", bool, True, help="draw '=?' after the expression"),
        Param("negative", bool, False, help="allow negative values (else such expressions are drawn again)"),
        Param("rotate", float, 0.0, 0.0, 60.0, "largest rotation of a token (an operand, an operator) in degrees"),
        Param("spacing", float, 1.15, 0.85, 2.0, "step to the next digit of an operand, in character widths"),
        Param("gap", float, 0.3, 0.0, 1.5, "extra space around operators, in character widths"),
        Param("boxes", float, 0.0, 0.0, 1.0, "share of operands drawn inside a frame"),
        Param("colours", int, 1, 1, 4, "ink colours the tokens are drawn in"),
        Param("lookalike", float, 0.0, 0.0, 1.0, "operators drawn toward their look-alikes (+ and ×, - and =)"),
        Param("lines", int, 0, 0, 10, "interference lines"),
        Param("curves", int, 0, 0, 10, "interference curves"),
        Param("dots", float, 0.0, 0.0, 0.3, "fraction of pixels turned into dots"),
        Param("texture", float, 0.0, 0.0, 200.0, "grey range of the background's texture"),
        Param("fonts", int, 1, 1, 7, "how many of the bundled fonts to draw from"),
    )

    def at_strength(self, s):
        return {
            "high": round(9 + 22 * s) if s <= 0.5 else round(20 + 158 * (s - 0.5)),
            "operators": "+" if s < 0.25 else "+-×" if s < 0.75 else "+-×÷",
            "rotate": 30 * s,
            "spacing": 1.3 - 0.3 * s,
            "gap": 0.3 - 0.2 * s,
            "boxes": s,
            "colours": 1 + round(2 * s),
            "lookalike": 0.6 * s,
            "lines": round(3 * s),
            "curves": round(4 * s),
            "dots": 0.05 * s,
            "texture": 120 * s,
            "fonts": 1 + round(6 * s),
        }

    def check(self, p):
        unknown = sorted(set(p["operators"]) - set(OPERATORS))
        if not p["operators"] or unknown:
            raise CaptchalabError(f"operators {p['operators']!r}: each must be one of {''.join(OPERATORS)}")
        if p["low"] > p["high"]:
            raise CaptchalabError(f"low={p['low']} is above high={p['high']}")

    def own_charset(self, p):
        return "0123456789" + "".join(dict.fromkeys(p["operators"])) + ("=?" if p["equals"] else "")

    def text_for(self, rng, charset, low, high, p):
        ops = list(dict.fromkeys(p["operators"]))
        for _ in range(TRIES):
            chosen = [str(rng.choice(ops)) for _ in range(p["operands"] - 1)]
            numbers = [int(rng.integers(p["low"], p["high"] + 1)) for _ in range(p["operands"])]
            for k, op in enumerate(chosen):
                if op == "÷":  # a divisor and a whole quotient, so that the value is whole
                    divisor = int(rng.integers(max(p["low"], 1), max(p["high"], 1) + 1))
                    quotients = range(-(-p["low"] // divisor), p["high"] // divisor + 1)
                    numbers[k + 1] = divisor
                    numbers[k] = divisor * int(rng.choice(quotients)) if len(quotients) else divisor
            if not p["negative"] and len(numbers) == 2 and chosen[0] == "-" and numbers[0] < numbers[1]:
                numbers.reverse()
            text = "".join(str(n) + op for n, op in zip(numbers, chosen + [""]))
            try:
                if p["negative"] or expression_value(text) >= 0:
                    return text + ("=?" if p["equals"] else "")
            except ValueError:  # a chain such as 3x5÷4: drawn again
                continue
        raise CaptchalabError(f"no whole, non-negative value in {TRIES} draws with operators {p['operators']!r}")

    def render(self, text, rng, p):
        inks = [r.dark_color(rng, 110) for _ in range(p["colours"])]
        tokens = _tokens(text)
        size = p["font_size"]
        masks, colours, steps, framed = [], [], [], []
        for k, token in enumerate(tokens):
            angle = rng.uniform(-p["rotate"], p["rotate"])
            ink = inks[int(rng.integers(len(inks)))]
            operator = not token[0].isdigit()
            frame = token[0].isdigit() and rng.uniform() < p["boxes"]
            start = len(masks)
            for c in token:
                turn = angle
                if c in "+x×" and p["lookalike"]:  # + turned toward ×, × toward +
                    turn += rng.uniform(0, 45 * p["lookalike"])
                m = r.rotate_scale(r.glyph(c, int(rng.integers(p["fonts"])), size), turn)
                if c == "-" and rng.uniform() < p["lookalike"]:  # a faint second stroke: - reads as =
                    m = _second_stroke(m, 0.3 + 0.5 * p["lookalike"])
                masks.append(m)
                colours.append(ink)
                steps.append(m.shape[1] * p["spacing"])
            before_operator = k + 1 < len(tokens) and not tokens[k + 1][0].isdigit()
            steps[-1] += size * (0.5 * p["gap"] if operator or before_operator else 0.12)
            if frame:
                framed.append((start, len(masks)))
        steps[-1] = masks[-1].shape[1]
        margin = 10
        width = int(np.ceil(sum(steps))) + 2 * margin
        height = max(p["height"], max(m.shape[0] for m in masks) + 8)
        low = int(255 - p["texture"])
        grey = r.textured_canvas(height, width, rng, low, 255)
        image = cv2.cvtColor(cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        boxes, x = [], float(margin)
        for mask, ink, step in zip(masks, colours, steps):
            y = (height - mask.shape[0]) / 2 + rng.uniform(-3, 3)
            y = min(max(y, 0), height - mask.shape[0])
            boxes.append(r.paste(image, mask, int(round(x)), int(round(y)), ink))
            x += step
        for first, end in framed:  # a frame around the operand's ink, in its ink
            x0 = min(b[0] for b in boxes[first:end]) - 3
            y0 = min(b[1] for b in boxes[first:end]) - 3
            x1 = max(b[2] for b in boxes[first:end]) + 2
            y1 = max(b[3] for b in boxes[first:end]) + 2
            cv2.rectangle(image, (max(x0, 0), max(y0, 0)), (min(x1, width - 1), min(y1, height - 1)), colours[first], 1)
        shade = (int(rng.integers(60, 160)),) * 3
        r.interference_lines(image, rng, p["lines"], shade, 1)
        r.arcs(image, rng, p["curves"], shade, 1)
        r.dots(image, rng, p["dots"], 60, 200)
        return r.Rendered(image, boxes)


def _tokens(text: str) -> list[str]:
    """Operands (runs of digits) and single other characters, in order."""
    out = []
    for c in text:
        if c.isdigit() and out and out[-1][0].isdigit():
            out[-1] += c
        else:
            out.append(c)
    return out


def _second_stroke(mask: np.ndarray, strength: float) -> np.ndarray:
    """A minus with a fainter copy of itself below: toward an equals sign."""
    h, w = mask.shape
    out = np.zeros((h * 3 + 2, w), np.uint8)
    out[:h] = mask
    out[2 * h + 2 :] = (mask * strength).astype(np.uint8)
    return out
