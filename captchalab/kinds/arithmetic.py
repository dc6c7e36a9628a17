"""Arithmetic CAPTCHAs ("14 + 21 = ?"): a text CAPTCHA whose answer is the value of the expression
it draws. The answer rule is the kind's, so nothing else branches on a style's name: a style of
this kind draws an expression (`Generator.text_for`), labels.csv keeps the drawn expression in
`text` (`14+21=?`) and its value in `value`, and every text reader solves it by reading the
expression, which the kind evaluates (`reading_value`: up to its first "="). A challenge passes
when the value of what was read equals the value of the truth, as a site accepts it: a misread that keeps the value
passes. Expression accuracy (the exact text) is a second measure.

A labels file may hold the value alone (`filename,value`: what a site's log keeps): such a dataset
can be attacked but not trained on (a reader must be shown what is drawn).
"""

from __future__ import annotations

import re

from .base import LOWER_BOUND_NOTE, interval, pct, plain_reply, trained
from .text import TextKind

# what each operator may be drawn as, and the operation it stands for
OPERATORS = {"+": "+", "-": "-", "x": "*", "×": "*", "÷": "/"}
EXPRESSION_CHARS = "0123456789" + "".join(OPERATORS) + "=?"
_TOKEN = re.compile(r"\d+|[^\d]")


def expression_value(text: str) -> int:
    """The value of an expression as drawn: whole numbers and the operators of OPERATORS, with the
    usual precedence (x, × and ÷ before + and -), optionally ending in "=" or "=?"; a bare number
    is its own value (a value-only label). ValueError says why a text is not one: an empty or
    malformed expression, an operator outside the set, a division that leaves a remainder."""
    body = text.strip().removesuffix("?").removesuffix("=")
    if not body:
        raise ValueError("empty expression")
    if re.fullmatch(r"-?\d+", body):
        return int(body)
    tokens = _TOKEN.findall(body)
    if len(tokens) % 2 == 0 or any(not t.isdigit() for t in tokens[::2]):
        raise ValueError(f"malformed expression {text!r}")
    unknown = [t for t in tokens[1::2] if t not in OPERATORS]
    if unknown:
        raise ValueError(f"operator {unknown[0]!r} is not one of {''.join(OPERATORS)}")
    terms, ops = [int(tokens[0])], []
    for op, number in zip(tokens[1::2], tokens[2::2]):  # products and quotients first
        op, n = OPERATORS[op], int(number)
        if op == "*":
            terms[-1] *= n
        elif op == "/":
            if n == 0 or terms[-1] % n:
                raise ValueError(f"{text!r} has no whole-number value")
            terms[-1] //= n
        else:
            terms.append(n)
            ops.append(op)
    value = terms[0]
    for op, n in zip(ops, terms[1:]):
        value = value + n if op == "+" else value - n
    return value


def value_or_none(text: str) -> int | None:
    try:
        return expression_value(text)
    except ValueError:
        return None


def reading_value(text: str) -> int | None:
    """The value of what a reader read: the expression before the first "=" (what follows it is the
    prompt's "?", however a reader renders it: "15+19=7" is 34), None when that is no expression."""
    return value_or_none(text.split("=")[0])


def is_expression(text: str) -> bool:
    """Whether a label holds the drawn expression (not a value alone)."""
    return value_or_none(text) is not None and not re.fullmatch(r"-?\d+", text.strip())


class ArithmeticKind(TextKind):
    name, columns, example_style = "arithmetic", ("text", "value"), "math"
    # a site's log may keep the value alone; a corpus labelled with the expression alone is read
    # as arithmetic when asked (`--kind`: as `text` it is plain text, the first registered)
    other_columns = (("value",), ("text",))
    read_as = "text"
    asks = "Type the value of the expression."
    per_style_columns = (
        ("captcha_accuracy", "value"),
        ("expression_accuracy", "expression"),
        ("char_accuracy", "char acc."),
    )

    def row(self, question, answer):
        return [answer, expression_value(answer)]

    def parse_row(self, cells):
        """The drawn expression (its `value` cell, when there is one, must agree), else the value
        alone."""
        text, value = cells.get("text", "").strip(), cells.get("value", "").strip()
        if not text and not value:
            raise ValueError("neither an expression nor a value")
        if text and not is_expression(text):
            raise ValueError(f"{text!r} is not an expression of {EXPRESSION_CHARS}")
        if value and not re.fullmatch(r"-?\d+", value):
            raise ValueError(f"value {value!r} is not a whole number")
        if text and value and expression_value(text) != int(value):
            raise ValueError(f"{text} is {expression_value(text)}, its value cell says {value}")
        return None, text or value

    def untrainable(self, answer):
        return "" if is_expression(answer) else "holds a value only, not the expression drawn"

    def correct(self, truth, guess, ignore_case=False):
        value = reading_value(guess)
        return value is not None and value == value_or_none(truth)

    def spelled(self, truth):
        return is_expression(truth)

    def text_counts(self, items):
        spelled = [it for it in items if is_expression(it.text)]
        return {
            "spelled": len(spelled),
            "right": sum(it.reading.text == it.text for it in spelled),
            "unparsable": sum(reading_value(it.reading.text) is None for it in items),
        }

    def text_fields(self, counts, wilson):
        spelled, right = counts["spelled"], counts["right"]
        return {
            "expression_accuracy": right / spelled if spelled else None,
            "expression_accuracy_ci95": wilson(right, spelled),
            "expressions_scored": spelled,
            "unparsable": counts["unparsable"],
        }

    def report_table(self, result):
        lines = [
            "",
            "| attacker | value right | 95% interval | expression read exactly | character accuracy | "
            "unparsable readings | CAPTCHAs/s | read | skipped | training |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in result["per_attacker"].items():
            lines.append(
                f"| {name} | {pct(r['captcha_accuracy'])} | {interval(r.get('captcha_accuracy_ci95'))} | "
                f"{pct(r.get('expression_accuracy'))} | {pct(r['char_accuracy'])} | {r.get('unparsable', '-')} | "
                f"{r.get('captchas_per_second') or '-'} | {r['count']} | {r['skipped']} | "
                f"{trained(r.get('state'))} |"
            )
        return lines + [
            "",
            "A challenge passes when the value of what the attacker read (up to its first =) equals its true value, as a "
            "site accepts it (a misread that keeps the value passes); a reading that is not an "
            "expression fails and is counted as unparsable. Expression accuracy is the exact text "
            f"read, over the challenges whose labels hold the expression; {result['char_accuracy_definition']}.",
            "",
            LOWER_BOUND_NOTE,
        ]

    def summary(self, r):
        shown = pct(r.get("expression_accuracy"))
        return f" (by value), expressions read exactly {shown}, {r.get('unparsable', 0)} unparsable"

    def describe_reading(self, found, truth):
        value = reading_value(found or "")
        said = f"reads {found or '?'} = {value}" if value is not None else f"reads {found or '?'} (no value)"
        return said + (f" (truth {truth} = {value_or_none(truth)})" if truth is not None else "")

    def solver_prompt(self, question, charset, length):
        return (
            "This picture is an arithmetic CAPTCHA: it shows a sum to work out. Reply with its "
            "value alone, as a whole number, no other words."
        )

    def solver_answer(self, reply, question, charset):
        """A whole number, or an expression of the set (a model that copies the sum out); anything
        else is not an answer."""
        text = "".join(plain_reply(reply).split())
        if reading_value(text) is None:
            raise ValueError("not a whole number")
        return text

    def page_answer(self, answer, question):
        text = super().page_answer(answer, question)
        if not re.fullmatch(r"-?\d{1,9}", text):
            raise ValueError("the answer is a whole number")
        return text

    def page_value(self, truth, question):
        return str(value_or_none(truth))

    def wrong_value(self, truth, question, charset, rng):
        return str(value_or_none(truth) + int(rng.choice([-10, -2, -1, 1, 2, 10])))
