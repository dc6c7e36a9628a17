"""Public import path for style plugins' drawing helpers: `from captchalab import render`
(docs/plugins.md). The code lives in captchalab.generation.render."""
from .generation.render import *  # noqa: F401,F403
from .generation.render import Rendered, font_paths  # noqa: F401
