"""Public import path for style plugins: `from captchalab.generator import Generator, Param,
Rendered, register` (docs/plugins.md). The code lives in captchalab.generation.generator."""
from .generation.generator import (AVOID_AMBIGUOUS, FONT_SIZE, HEIGHT, REGISTRY, Generator,  # noqa: F401
                                   Param, PluginError, Rendered, find_param, parse_assignments, register)
