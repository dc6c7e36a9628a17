"""Public import path for style plugins: `from captchalab.generator import Generator, Param,
Rendered, Challenge, register` (docs/plugins.md). The code lives in captchalab.generation.generator."""

from .generation.generator import (
    AVOID_AMBIGUOUS,
    FONT_SIZE,
    HEIGHT,
    REGISTRY,
    Challenge,
    Generator,
    Param,
    PluginError,
    Rendered,
    find_param,
    parse_assignments,
    register,
)
