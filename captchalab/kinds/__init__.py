"""CAPTCHA kinds: what a challenge asks, how its answer is written, scored, reported and answered
by people. Every CAPTCHA has an image, a *question* (what the page shows beside the image) and an
*answer* (what the user must send back); the kind decides both shapes, and the house (datasets,
sources, attackers, reports, sweeps, studies, explore) carries them unchanged and asks the kind.

An answer always travels as its label string (a `Reading`'s `text`, a training example's label),
so every path of the house carries it unchanged; whether it passes is the kind's rule (`correct`:
the exact string for text and grids, a tolerance for sliders and rotations), and the kind's
scorer adds its own measures. What `prepare` is told: the expected length for text (when the
attacker uses it), else the question with the images the page shows beside it (attack.hint_for).

The built-in kinds: `text` (text.py), `grid` (grid.py), `slider` and `rotation` (numeric.py),
`arithmetic` (arithmetic.py: text read, scored by the value of the expression), `click`
(click.py: points clicked in order, each inside its target's box), `audio` (audio.py: characters
spoken, a WAV file read where other kinds read an image, scored as text). A
kind of one's own subclasses `Kind` (base.py) and is added with `register_kind` (docs/plugins.md).
"""

from .arithmetic import ArithmeticKind, expression_value, is_expression
from .audio import AudioKind
from .click import ClickKind, format_boxes, format_clicks, parse_boxes, parse_clicks
from .base import KINDS, Kind, get_kind, kind_of_columns, reads, register_kind, unanswered
from .grid import GRID_SIZES, MAP_CELLS, GridKind, format_tiles, parse_grid, parse_tiles, score_grid
from .numeric import NumberKind, RotationKind, SliderKind, angle_error, score_errors
from .text import TextKind

for _kind in (
    TextKind(),
    GridKind(),
    SliderKind(),
    RotationKind(),
    ArithmeticKind(),
    ClickKind(),
    AudioKind(),
):  # text first: its labels files are the oldest
    register_kind(_kind)

__all__ = [
    "KINDS",
    "Kind",
    "NumberKind",
    "TextKind",
    "ArithmeticKind",
    "AudioKind",
    "expression_value",
    "is_expression",
    "reads",
    "GridKind",
    "ClickKind",
    "format_boxes",
    "format_clicks",
    "parse_boxes",
    "parse_clicks",
    "SliderKind",
    "RotationKind",
    "get_kind",
    "register_kind",
    "kind_of_columns",
    "unanswered",
    "GRID_SIZES",
    "MAP_CELLS",
    "format_tiles",
    "parse_grid",
    "parse_tiles",
    "score_grid",
    "angle_error",
    "score_errors",
]
