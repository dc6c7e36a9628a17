"""Character sets: the value that travels from the generator through training and attack to the
report. A set is a string of distinct characters in the order a network's outputs use.

Named sets: digits, lower, upper, alnum (digits + lower), ALNUM (digits + lower + upper); any
other string is an explicit set ("0123456789abcdef").
"""

from __future__ import annotations

import difflib
import string

from .errors import CaptchalabError

DIGITS = string.digits
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
ALNUM = DIGITS + LOWER + UPPER
NAMED = {"digits": DIGITS, "lower": LOWER, "upper": UPPER, "alnum": DIGITS + LOWER, "ALNUM": ALNUM}

# Characters a reader (human or machine) confuses in the bundled fonts; a style may leave them out.
AMBIGUOUS_GROUPS = ("0oO", "1lI", "2zZ", "5sS", "8B", "9gq", "cC", "kK", "pP", "uU", "vV", "wW", "xX")
AMBIGUOUS = frozenset("".join(AMBIGUOUS_GROUPS))


# what a general OCR engine (or a language model) reads where a CAPTCHA's alphabet has no such character
LOOK_ALIKES = {"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1", "Z": "2", "z": "2",
               "S": "5", "s": "5", "G": "6", "b": "6", "T": "7", "B": "8", "g": "9", "q": "9", "0": "o", "1": "l",
               "5": "s", "2": "z", "8": "b", "9": "g", "6": "b",
               "x": "×", "X": "×", "*": "×", "✕": "×", "/": "÷", ":": "÷", "—": "-", "–": "-",
               # a Chinese model's look-alikes: ten, one and two read for plus, minus and equals
               "十": "+", "＋": "+", "一": "-", "－": "-", "二": "=", "＝": "=", "？": "?"}  # fmt: skip


def in_charset(text: str, charset: str) -> str:
    """An OCR engine's text as characters of `charset`: each kept as it is, else in the other case,
    else as its look-alike (O for 0 in digits), else dropped."""
    out = []
    for c in text:
        for candidate in (c, c.lower(), c.upper(), LOOK_ALIKES.get(c, ""), LOOK_ALIKES.get(c, "").upper()):
            if candidate and candidate in charset:
                out.append(candidate)
                break
    return "".join(out)


def parse_charset(text: str) -> str:
    """A named set, or an explicit string of distinct printable characters."""
    if text in NAMED:
        return NAMED[text]
    if not text:
        raise CaptchalabError("`charset` is empty")
    close = difflib.get_close_matches(text, NAMED, n=1, cutoff=0.75)
    if close or (text.isalpha() and text.lower() == text and text.lower() in {n.lower() for n in NAMED}):
        raise CaptchalabError(
            f"unknown charset name {text!r}; did you mean {close[0] if close else 'alnum'!r}? "
            f"(named sets: {', '.join(NAMED)}; or give the characters themselves)"
        )
    bad = sorted({c for c in text if not c.isprintable() or c.isspace() or c in ",\"'"})
    if bad:
        raise CaptchalabError(f"`charset`: characters {''.join(bad)!r} cannot be CAPTCHA characters")
    duplicated = sorted({c for c in text if text.count(c) > 1})
    if duplicated:
        raise CaptchalabError(f"`charset` {text!r} repeats {''.join(duplicated)!r}")
    return text


def charset_name(charset: str) -> str:
    """The set's name when it has one, else the characters themselves."""
    for name, chars in NAMED.items():
        if chars == charset:
            return name
    return charset


def outside(text: str, charset: str) -> str:
    """The characters of `text` that `charset` lacks, each once, in order."""
    return "".join(dict.fromkeys(c for c in text if c not in charset))


def check_covers(charset: str, needed: str, what: str) -> None:
    """Refuse when `charset` cannot express every character of `needed`."""
    missing = outside(needed, charset)
    if missing:
        raise CaptchalabError(f"{what} cannot express {missing!r} (its charset is {charset_name(charset)!r})")


def without_ambiguous(charset: str) -> str:
    return "".join(c for c in charset if c not in AMBIGUOUS)


def fold(text: str, ignore_case: bool) -> str:
    return text.lower() if ignore_case else text
