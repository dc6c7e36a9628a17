"""Public import path for plugin authors: `from captchalab import render`. The code lives in
captchalab.generation.render; this name is the same module object."""
import sys

from .generation import render as _render

sys.modules[__name__] = _render
