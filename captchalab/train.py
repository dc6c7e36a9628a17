"""Training pipelines: the seed's network on single characters (MNIST, rendered characters) and
any attacker on CAPTCHAs. Each prepares its data, trains through the shared loop (captchalab/training),
and writes `NAME.keras` + `NAME.json` atomically.
"""

from __future__ import annotations

import functools
import inspect
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .attack import LABEL_LENGTH, prepare_source
from .attackers.base import load_attacker
from .charset import DIGITS, charset_name
from .data.dataset import GeneratedSource, Source, file_hashes
from .errors import CaptchalabError
from .fileio import atomic_write_json, save_model_atomic
from .generation.chars import render_chars
from .kinds import get_kind, reads
from .manifest import make_manifest
from .model import TrainConfig, build_model, evaluate, held_out, make_train_step, split_validation, train_network  # noqa: F401
from .registry import source_of
from .runtime import build_with_policy, float32_copy, training_policy
from .training import check_resumable, checkpoint_dir, run_record, training_lock, validation_size
from .training.stopping import inherited, same_training


def check_model_path(out: Path) -> Path:
    out = Path(out)
    if out.suffix != ".keras":
        raise CaptchalabError(f"`out` must end in .keras, got {out}")
    return out


def finish(model, out: Path, info: dict, wall_start: float) -> dict:
    """Write the final model and its JSON atomically, then drop the checkpoint."""
    save_model_atomic(model, out)
    info = {**info, "wall_seconds": round(time.perf_counter() - wall_start, 2)}
    atomic_write_json(out.with_suffix(".json"), info)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return info


def one_run_per_model(train):
    """Run `train` holding its `out` model's training lock (training.training_lock)."""
    signature = inspect.signature(train)

    @functools.wraps(train)
    def run(*args, **kwargs):
        with training_lock(check_model_path(signature.bind(*args, **kwargs).arguments["out"])):
            return train(*args, **kwargs)

    return run


def network_info(charset: str, task: str, **fields) -> dict:
    """The JSON fields that make a seed-network model usable as a `segment` attacker."""
    return {
        "attacker": "segment",
        "charset": charset,
        "charset_name": charset_name(charset),
        "input": {"crop": [28, 28, 1]},
        "task": task,
        **fields,
    }


@one_run_per_model
def train_characters(
    task: str,
    charset: str,
    train: tuple,
    test: tuple,
    out: Path,
    config: TrainConfig,
    resume: bool = False,
    verbose: int = 0,
    on_epoch=None,
    manifest_fields: dict | None = None,
) -> dict:
    """The seed's network on single 28x28 characters: hold out `config.validation_count` of the
    training images, train, evaluate on the test images, write `out` and `out`.json."""
    import keras

    out = check_model_path(out)
    config.check()
    check_resumable(out, resume)
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    x_train, y_train, x_val, y_val = split_validation(*train, config.validation_count, config.seed)
    build = lambda: build_model(len(charset), seed=config.seed)  # noqa: E731
    model = build_with_policy(build, training_policy())
    state = train_network(model, x_train, y_train, x_val, y_val, config, checkpoint_dir(out), resume, verbose, on_epoch)
    model = float32_copy(model, build)
    result = evaluate(model, *test, charset)
    info = network_info(
        charset,
        task,
        test_accuracy=result["accuracy"],
        per_class_accuracy=result["per_class_accuracy"],
        most_confused=most_confused(result["confusion_matrix"], charset),
        confusion_matrix=result["confusion_matrix"],
        train_count=len(x_train),
        validation_count=len(x_val),
        test_count=len(test[0]),
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        **run_record(state),
        manifest=make_manifest("model", task=task, config=asdict(config), **(manifest_fields or {})),
    )
    return finish(model, out, info, wall_start)


def train_mnist(data, out: Path, config: TrainConfig, resume: bool = False, verbose: int = 0, on_epoch=None) -> dict:
    """Train on MNIST, evaluate on the official test set, write `out` and `out`.json."""
    return train_characters(
        "mnist",
        DIGITS,
        (data.x_train, data.y_train),
        (data.x_test, data.y_test),
        out,
        config,
        resume,
        verbose,
        on_epoch,
        {"data_source": data.source, "data_hashes": data.file_hashes},
    )


# rendered characters are varied already; the per-epoch augmentation only adds small moves
CHARS_TRAINING = dict(epochs=6, learning_rate=3e-3, max_rotate=5.0, max_shift=1.5, max_scale=0.05)


def train_chars(
    charset: str,
    out: Path,
    config: TrainConfig,
    count: int = 40000,
    test_count: int = 5000,
    resume: bool = False,
    verbose: int = 0,
    on_epoch=None,
) -> dict:
    """Train the network on single characters rendered from the bundled fonts; evaluate on a
    held-out set rendered with another seed; write `out` and `out`.json."""
    if count < 2 * len(charset) or test_count < 1:
        raise CaptchalabError(f"`count` must be at least twice the charset size ({2 * len(charset)})")
    config.check()
    train = render_chars(charset, count, config.seed)
    test = render_chars(charset, test_count, config.seed + 1000)
    return train_characters(
        "chars",
        charset,
        train,
        test,
        out,
        config,
        resume,
        verbose,
        on_epoch,
        {"charset": charset, "count": count, "test_count": test_count},
    )


# -- any attacker on CAPTCHAs ---------------------------------------------------------------


def _prepared(attacker, source, length, workers: int) -> tuple[list, dict]:
    """Every CAPTCHA of `source` prepared for `attacker` as (prepared, text), and the ones that
    could not be used, by name, with why."""
    examples, skipped = [], {}
    for chunk in prepare_source(attacker, source, length, workers):
        for item in chunk:
            if item.skipped:
                skipped[item.name] = item.error or "unreadable"
            else:
                examples.append((item.prepared, item.text))
    return examples, skipped


def prepare_examples(attacker, source, workers: int = 2) -> tuple[list, dict]:
    """Every CAPTCHA of `source` prepared for training `attacker` (each told its label's length
    when the attacker uses it), and counts of what could not be used."""
    examples, skipped = _prepared(attacker, source, LABEL_LENGTH, workers)
    if not examples:
        raise CaptchalabError("no usable CAPTCHA to train on")
    return examples, {"captchas": len(examples) + len(skipped), "unreadable": len(skipped)}


def split_examples(examples: list, seed: int) -> tuple[list, list]:
    """Training and validation examples; `validation_size` says how many are held out and why."""
    train, validation = held_out(len(examples), validation_size(len(examples)), seed)
    return [examples[i] for i in train], [examples[i] for i in validation]


def check_semi_supervised(attacker) -> None:
    """Refuse unlabelled CAPTCHAs for an attacker that does not declare it can learn from them."""
    if not attacker.semi_supervised:
        raise CaptchalabError(
            f"attacker {attacker.name!r} does not train on unlabelled CAPTCHAs (semi_supervised is not declared)"
        )


def prepare_unlabelled(attacker, unlabelled, workers: int = 2, train: list | None = None) -> tuple[list, dict]:
    """Every readable image of an unlabelled Dataset prepared for `attacker` (each asked the
    question its `unlabelled_question(train)` gives), and what it holds: counts, the files skipped
    (and why) and every file's SHA-256 (attacks on these images are refused later: an attacker
    that trained on them, even unlabelled, has seen the answers' images)."""
    check_semi_supervised(attacker)
    question = attacker.unlabelled_question(train or [])
    asked = replace(unlabelled, kind=attacker.kind, questions=[question] * len(unlabelled)) if question else unlabelled
    examples, skipped = _prepared(attacker, Source(dataset=asked), None, workers)
    prepared = [p for p, _ in examples]
    if not prepared:
        raise CaptchalabError(
            f"`unlabelled` {unlabelled.root}: no readable image "
            f"({len(skipped)} skipped, first: {next(iter(skipped.items()), ('', ''))})"
        )
    return prepared, {
        "folder": str(unlabelled.root),
        "count": len(prepared),
        "skipped": len(skipped),
        "skipped_files": skipped,
        "image_sha256": sorted(file_hashes(unlabelled)),
    }


def check_fresh(attacker, source) -> None:
    """Refuse `--fresh` where it cannot apply: a dataset folder, an attacker without the capability."""
    if not isinstance(source, GeneratedSource):
        raise CaptchalabError("`fresh` draws new CAPTCHAs from a style: it needs `style`, not `dataset`")
    if not attacker.fresh_examples:
        raise CaptchalabError(
            f"attacker {attacker.name!r} does not train on fresh CAPTCHAs (fresh_examples is not declared)"
        )


def fresh_draws(attacker, source, count: int, workers: int):
    """`draw(seed)`: `count` CAPTCHAs of the source's design drawn with `seed`, prepared for
    `attacker` (the generator is free: an epoch need not re-read the same CAPTCHAs)."""

    def draw(seed: int) -> list:
        return prepare_examples(attacker, source.redrawn(seed, count), workers)[0]

    return draw


def budget_warnings(attacker, settings, result: dict) -> list[str]:
    """A training budget given (`budget`) that the attacker's fit did not record running under: its
    own `fit` ignored it (the shared loop records the budget it ran under in the verdict)."""
    ran_under = (result.get("convergence") or {}).get("budget")
    if settings.budget is None or (ran_under is not None and ran_under <= settings.budget):
        return []
    return [
        f"attacker {attacker.name!r} ({source_of('attacker', attacker.name)}) trained with its own fit, which "
        f"did not record running under the budget of {settings.budget:,} examples"
        + (f" (it records {ran_under:,})" if ran_under is not None else "")
        + ": the budget may have been ignored"
    ]


@one_run_per_model
def train_attacker(
    attacker,
    source,
    out: Path,
    settings,
    init_from: Path | None = None,
    workers: int = 2,
    resume: bool = False,
    verbose: int = 0,
    on_epoch=None,
    plugin_dirs=(),
    unlabelled=None,
    fresh: bool = False,
) -> dict:
    """Train `attacker` (a fresh instance of any trainable attacker) on the CAPTCHAs of `source`,
    optionally starting from another model's weights, with `unlabelled` (a Dataset of
    unlabelled CAPTCHAs) semi-supervised, and with `fresh` on CAPTCHAs of the source's style
    drawn anew every epoch (the first draw's held-out part still validates); write `out`
    (.keras) and its JSON."""
    import keras

    out = check_model_path(out)
    check_resumable(out, resume)
    _check_pairing(attacker, source, fresh)
    source = _teaching_rows(source)
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    if not get_kind(attacker.kind).characters:  # one output per object class the challenges draw from
        attacker.classes = source.classes()
    attacker.model = build_with_policy(lambda: attacker.build(settings.seed), training_policy())
    base, taken = (load_attacker(init_from, plugin_dirs), None) if init_from else (None, None)
    started_from = "scratch"
    if base is not None:
        taken = attacker.init_from(base)
        if taken:
            started_from = str(init_from)
            settings = replace(settings, fine_tune=True)
        else:  # another architecture (other hyper-parameters): a fine-tune's lower rate would only slow it
            taken = f"nothing: no layer of {Path(init_from).name} fits this model, so it trained from scratch"
    train, validation, stats = _train_and_validation(attacker, source, settings.seed, workers)
    fit_source = stats.pop("fit_source", source)
    extra, unlabelled_info = {}, None
    if unlabelled is not None:
        extra["unlabelled"], unlabelled_info = prepare_unlabelled(attacker, unlabelled, workers, train)
    if fresh:
        extra["fresh"] = fresh_draws(attacker, fit_source, len(train), workers)
    result = attacker.fit(train, validation, settings, checkpoint_dir(out), resume, on_epoch, **extra)
    result["warnings"] = budget_warnings(attacker, settings, result)
    described = source.describe()
    parent = base.info if started_from != "scratch" else None  # a model it took nothing from passes no flag on
    same = parent is not None and same_training(parent, described, fresh, unlabelled_info)
    result["convergence"] = inherited(result.get("convergence"), parent, same)
    attacker.model = float32_copy(attacker.model, lambda: attacker.build(settings.seed))
    pool, pictures = fit_source.pictures()
    run = {
        "pictures": {"pool": pool, "sha256": sorted(pictures)} if pictures else None,
        "source": described,
        "initialised_from": started_from,
        "initialised_weights": taken,
        "train_count": len(train),
        "validation_count": len(validation),
        "unlabelled": unlabelled_info,
        "fresh_every_epoch": fresh,
    }
    return finish(attacker.model, out, _captcha_model_info(attacker, settings, stats, run, result), wall_start)


def _train_and_validation(attacker, source, seed: int, workers: int) -> tuple[list, list, dict]:
    """The examples to fit on and to validate on, and counts. A style that declares
    `picture_parts` is validated on challenges drawn from pictures the fitted ones never show (a
    split by challenge alone would measure memory of the pictures and call it convergence); any
    other source is split by CAPTCHA."""
    parts = source.picture_parts(validation_size(len(source)), seed + 104_729)
    if parts is None:
        examples, stats = prepare_examples(attacker, source, workers)
        train, validation = split_examples(examples, seed)
        return train, validation, {**stats, "validation_by": "captcha"}
    (train, fitted), (validation, checked) = (prepare_examples(attacker, part, workers) for part in parts)
    stats = {key: fitted[key] + checked[key] for key in fitted}
    return train, validation, {**stats, "validation_by": "picture", "fit_source": parts[0]}


def _teaching_rows(source):
    """A dataset's source without the labels that cannot teach a reader (an arithmetic label that
    holds the value alone), those named among its rejected rows; refused when none is left."""
    dataset = getattr(source, "dataset", None)
    if dataset is None:
        return source
    kind = get_kind(dataset.kind)
    why = [kind.untrainable(text) for text in dataset.texts]
    if not any(why):
        return source
    keep = [i for i, reason in enumerate(why) if not reason]
    if not keep:
        raise CaptchalabError(
            f"{dataset.root}: its labels hold values only, not what is drawn: it can be attacked, not trained on"
        )
    return Source(
        dataset=replace(
            dataset,
            filenames=[dataset.filenames[i] for i in keep],
            texts=[dataset.texts[i] for i in keep],
            questions=None if dataset.questions is None else [dataset.questions[i] for i in keep],
            rejected=dataset.rejected + [(n, r) for n, r in zip(dataset.filenames, why) if r],
        )
    )


def _check_pairing(attacker, source, fresh: bool) -> None:
    """Refuse, before any work, an attacker that cannot learn from these CAPTCHAs."""
    if not attacker.trainable:
        raise CaptchalabError(f"attacker {attacker.name!r} cannot be trained")
    if fresh:
        check_fresh(attacker, source)
    if not reads(attacker.kind, source.kind):
        raise CaptchalabError(
            f"attacker {attacker.name!r} reads {attacker.kind} CAPTCHAs; these are {source.kind} CAPTCHAs"
        )
    source.check_charset(attacker.charset, f"a {attacker.name} attacker for charset {charset_name(attacker.charset)!r}")


def _captcha_model_info(attacker, settings, stats: dict, run: dict, result: dict) -> dict:
    """The JSON beside a model trained on CAPTCHAs: what it reads, how it was trained, on what."""
    characters = get_kind(attacker.kind).characters
    return {
        "attacker": attacker.name,
        "kind": attacker.kind,
        "charset": attacker.charset,
        **({} if characters else {"classes": attacker.classes}),
        "charset_name": charset_name(attacker.charset),
        "input": attacker.geometry(),
        "hyperparameters": attacker.hparams,
        "task": "captcha",
        "source": run["source"],
        "initialised_from": run["initialised_from"],
        "initialised_weights": run["initialised_weights"],
        **stats,
        "train_count": run["train_count"],
        "validation_count": run["validation_count"],
        "seed": settings.seed,
        "labelled_count": stats["captchas"],
        "unlabelled": run["unlabelled"],
        "fresh_every_epoch": run["fresh_every_epoch"],
        **({"pictures": run["pictures"]} if run["pictures"] else {}),  # the pictures it fitted on
        **result,
        "manifest": make_manifest(
            "model",
            task="captcha",
            attacker=attacker.name,
            hyperparameters=attacker.hparams,
            settings=asdict(settings),
            source=run["source"],
            initialised_from=run["initialised_from"],
            fresh_every_epoch=run["fresh_every_epoch"],
        ),
    }


def most_confused(confusion, charset: str, n: int = 10) -> list[dict]:
    """The `n` largest off-diagonal cells: which true character was read as which, how often."""
    m = np.array(confusion)
    np.fill_diagonal(m, 0)
    cells = np.dstack(np.unravel_index(np.argsort(m, axis=None)[::-1], m.shape))[0][:n]
    return [{"truth": charset[i], "guess": charset[j], "count": int(m[i, j])} for i, j in cells if m[i, j]]
