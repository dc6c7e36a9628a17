"""Public import path for plugin authors: `from captchalab.generator import Generator, Param,
Rendered, register`. The code lives in captchalab.generation.generator; this name is the same
module object."""
import sys

from .generation import generator as _generator

sys.modules[__name__] = _generator
