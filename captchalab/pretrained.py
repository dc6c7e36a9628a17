"""Where each attacker starts by default (`--from base`), and training that start the first time
it is needed. An attacker declares its start as a `BaseRecipe` (attackers/base.py):

- kind "characters" (`segment`): the seed's network on single characters: MNIST for digits
  (models/mnist.keras, `train mnist` defaults), rendered characters for any other set
  (models/chars-<set>.keras, `train chars` defaults);
- kind "captchas" (`ctc`, and any plugin that declares one): the attacker itself trained on a
  mixture of styles at several strengths and lengths (models/<attacker>-<set>.keras), so that a
  few hundred real CAPTCHAs are enough to fine-tune it.

An attacker that declares no base starts from scratch. Bases trained by our own commands on
our own generated data ship inside the package (captchalab/bases/, with their JSON and manifest),
so a new machine starts from them at once; a file of the same name under models/ takes precedence.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from .attackers.base import read_model_info
from .attackers.ctc import Ctc
from .charset import DIGITS, NAMED, charset_name, outside
from .data.dataset import GenerationSpec, Source
from .errors import CaptchalabError
from .plugins import get_attacker, get_generator

MODELS = Path("models")
SHIPPED = Path(__file__).parent / "bases"


def _set_tag(charset: str) -> str:
    return charset_name(charset) if charset in NAMED.values() else hashlib.sha1(charset.encode()).hexdigest()[:8]


def chars_path(charset: str, folder: Path = MODELS) -> Path:
    return folder / f"chars-{_set_tag(charset)}.keras"


def base_shape(attacker: str, hparams: dict | None, plugin_dirs=()) -> dict:
    """The hyper-parameters among `hparams` that give `attacker` a network of another shape than its
    default base's (its recipe's `shape`, set otherwise than their defaults)."""
    cls = get_attacker(attacker, list(plugin_dirs))
    shape = cls.base.shape if cls.base else ()
    resolved = cls.resolve({k: v for k, v in (hparams or {}).items() if k in shape})
    return {k: resolved[k] for k in shape if resolved[k] != cls.param(k).default}


def base_path(attacker: str, charset: str, folder: Path = MODELS, plugin_dirs=(), hparams=None) -> Path | None:
    """Where `attacker`'s default starting model for `charset` (and the network shape `hparams`
    set, if not the default) lives; None if it declares none."""
    recipe = get_attacker(attacker, list(plugin_dirs)).base
    if recipe is None:
        return None
    if recipe.trained_on == "characters":
        return folder / "mnist.keras" if charset == DIGITS else chars_path(charset, folder)
    shape = "".join(f"-{k}{v}" for k, v in base_shape(attacker, hparams, plugin_dirs).items())
    return folder / f"{attacker}-{_set_tag(charset)}{shape}.keras"


def base_mixture(recipe, charset: str, plugin_dirs=()):
    """The generated CAPTCHAs a "captchas" base learns from: every style of the recipe that draws
    the whole set, at every strength, taken in turn."""
    styles = [s for s in recipe.styles if not outside(charset, get_generator(s, list(plugin_dirs)).charset)]
    if not styles:
        raise CaptchalabError(f"no style of the base recipe draws every character of {charset!r}")
    specs = [
        GenerationSpec(
            style,
            recipe.count,
            *recipe.length,
            charset=charset,
            seed=recipe.seed + k,
            strength=s,
            plugin_dirs=tuple(plugin_dirs),
        )
        for k, (style, s) in enumerate((st, s) for st in styles for s in recipe.strengths)
    ]
    return Source(mixture=tuple(specs), count=recipe.count)


def ctc_mixture(charset: str, count: int | None = None, seed: int | None = None):
    """The generated CAPTCHAs the ctc starting model learns from."""
    from dataclasses import replace

    recipe = replace(Ctc.base, **{k: v for k, v in (("count", count), ("seed", seed)) if v is not None})
    return base_mixture(recipe, charset)


def nearest_base(attacker: str, charset: str, folder: Path = MODELS, plugin_dirs=(), hparams=None):
    """For a set no style of a "captchas" recipe draws whole (digits with operators: an arithmetic
    set), (the base of the named set sharing the most characters with it, that set), when one is at
    hand (trained under `folder` or shipped); None when the recipe draws the set (its own base is
    trained) or no named base shares a character. `init_from` takes its columns over for the shared
    characters; the others start untrained."""
    recipe = get_attacker(attacker, list(plugin_dirs)).base
    if recipe is None or recipe.trained_on != "captchas":
        return None
    try:
        base_mixture(recipe, charset, plugin_dirs)
        return None
    except CaptchalabError:
        pass
    candidates = []
    for named in NAMED.values():
        shared = len(set(named) & set(charset))
        path = base_path(attacker, named, folder, plugin_dirs, hparams)
        for where in (path, SHIPPED / path.name):
            if shared and where.is_file() and where.with_suffix(".json").is_file():
                candidates.append((-shared, len(named), str(where), named))
                break
    if not candidates:
        return None
    _, _, found, named = min(candidates)
    return Path(found), named


def ensure_base(
    attacker: str,
    charset: str,
    say: Callable[[str], None],
    folder: Path = MODELS,
    verbose: int = 0,
    on_epoch=None,
    plugin_dirs=(),
    hparams: dict | None = None,
) -> Path | None:
    """The default starting model of `attacker` for `charset` (of the network shape `hparams`
    set), trained first if it is missing; None when the attacker declares no base (it then starts
    from scratch)."""
    path = base_path(attacker, charset, folder, plugin_dirs, hparams)
    if path is None or path.is_file():
        return path
    shipped = SHIPPED / path.name
    if shipped.is_file() and shipped.with_suffix(".json").is_file():
        return shipped
    nearest = nearest_base(attacker, charset, folder, plugin_dirs, hparams)
    if nearest is not None:
        found, named = nearest
        say(
            f"{attacker} has no base for {charset!r} (no style of its recipe draws "
            f"{outside(charset, named)!r}): starting from its {charset_name(named)} base, the output "
            f"layer extended by {len(outside(charset, named))} characters that training learns"
        )
        return found
    from . import train
    from .attackers.base import TrainSettings, make_attacker
    from .training import checkpoint_dir

    resume = (checkpoint_dir(path) / "state.json").is_file()  # a run interrupted earlier goes on
    say(
        f"{path} is missing: training it first (once; later runs start from it)"
        + (", resuming the interrupted run" if resume else "")
    )
    recipe = make_attacker(attacker, charset, list(plugin_dirs)).base
    if recipe.trained_on == "characters" and charset == DIGITS:
        from .data.mnist import load_mnist

        info = train.train_mnist(
            load_mnist(None), path, train.TrainConfig(), resume=resume, verbose=verbose, on_epoch=on_epoch
        )
    elif recipe.trained_on == "characters":
        config = train.TrainConfig(**train.CHARS_TRAINING)
        info = train.train_chars(charset, path, config, resume=resume, verbose=verbose, on_epoch=on_epoch)
    else:
        info = train.train_attacker(
            make_attacker(attacker, charset, list(plugin_dirs), base_shape(attacker, hparams, plugin_dirs)),
            base_mixture(recipe, charset, plugin_dirs),
            path,
            TrainSettings(seed=recipe.seed),
            resume=resume,
            verbose=verbose,
            on_epoch=on_epoch,
            plugin_dirs=plugin_dirs,
        )
    accuracy = info.get("test_accuracy", info.get("val_accuracy"))
    say(f"{path}: accuracy {accuracy:.4f} on held-out data")
    return path


def starting_model(
    start: str,
    attacker: str,
    charset: str,
    say: Callable[[str], None] = lambda m: None,
    verbose: int = 0,
    on_epoch=None,
    plugin_dirs=(),
    hparams: dict | None = None,
) -> Path | None:
    """--from: 'scratch' (None), a model file, or 'base': the attacker's declared start (of the
    network shape `hparams` set), trained first if missing (None, with a note, for an attacker that
    declares none)."""
    if start == "scratch":
        return None
    if start != "base":
        path = Path(start)
        if not path.is_file():
            raise CaptchalabError(f"`start` model {path} does not exist")
        return path
    path = ensure_base(
        attacker, charset, say, verbose=verbose, on_epoch=on_epoch, plugin_dirs=plugin_dirs, hparams=hparams
    )
    if path is None:
        say(f"attacker {attacker!r} declares no base model: training from scratch")
    return path


def check_start(start: str, attackers: list[str]) -> None:
    """A model file given as --from must have been made by every attacker it starts."""
    if start in ("base", "scratch") or not Path(start).is_file():
        return
    made_by = read_model_info(Path(start))["attacker"]
    if any(name != made_by for name in attackers):
        raise CaptchalabError(f"`start` {start} is a {made_by} model; every attacker must be {made_by}")
