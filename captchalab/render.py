"""Public import path for style plugins' drawing helpers: `from captchalab import render`
(docs/plugins.md). The code lives in captchalab.generation.render."""

from .generation.render import *
from .generation.render import Rendered, font_paths
