"""Contract checks a plugin author runs in their own CI:

    from captchalab.testing import check_attacker, check_style
    check_style(Stripes)          # raises ContractError listing every problem, in plain words
    check_attacker(MultiHead)

Each exercises the documented contract (docs/plugins.md, docs/attackers.md) on tiny data: a few
CAPTCHAs, one short training for a trainable attacker. A pass says the plugin will work through
every command; it says nothing about how well it reads. `sample_photo_folder` makes a tile folder
of real photographs for a test of a reader of photographs.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import numpy as np

from .attackers.base import Reading, TrainSettings, load_attacker
from .charset import DIGITS
from .data.dataset import GenerationSpec, Source
from .data.media import media_of
from .errors import CaptchalabError
from .generation.generator import Challenge, Rendered
from .kinds import get_kind

# scikit-image's bundled sample pictures (the `test` extra installs it), by the COCO class they show
SAMPLE_PHOTOS = {
    "motorcycle": ["motorcycle_left.png", "motorcycle_right.png"],
    "person": ["astronaut.png", "camera.png"],
    "cup": ["coffee.png"],
    "cat": ["chelsea.png"],
}
MAX_SIDE = 4000  # the image decoder's default limit: larger CAPTCHAs could not be read back


class ContractError(AssertionError):
    """What a plugin does against its contract, one problem per line."""


def _fail_if(problems: list[str], what: str) -> None:
    if problems:
        raise ContractError(f"{what} breaks its contract:\n- " + "\n- ".join(dict.fromkeys(problems)))


def _box_problems(boxes, text: str, shape) -> list[str]:
    height, width = shape[:2]
    if len(boxes) != len(text):
        return [f"render({text!r}) returned {len(boxes)} boxes for {len(text)} characters"]
    problems = []
    for box in boxes:
        if len(box) != 4 or not all(isinstance(v, (int, np.integer)) for v in box):
            problems.append(f"box {box!r} is not four whole numbers (x0, y0, x1, y1)")
            continue
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            problems.append(
                f"box {tuple(box)} is not inside the {width}x{height} image with x0 < x1, y0 < y1 "
                "(x1 and y1 are exclusive)"
            )
    return problems


def check_style(cls, charset: str | None = None, count: int = 6) -> None:
    """Render `count` CAPTCHAs at strengths 0, 0.5 and 1 and check what the contract promises: an
    HxWx3 uint8 image of a readable size, one box per character inside it, the same bytes for the
    same seed, parameters within their declared ranges."""
    problems = []
    try:
        cls.check_contract()
        style = cls()
    except Exception as exc:
        raise ContractError(f"style {getattr(cls, 'name', cls)!r}: {exc}") from None
    if not get_kind(cls.kind).characters:
        _fail_if(_challenge_problems(style, count), f"style {cls.name!r}")
        return
    media = media_of(get_kind(cls.kind))
    for strength in (0.0, 0.5, 1.0):
        try:
            params = style.resolve(strength)
            chars = style.drawable(charset or cls.charset, params)
        except CaptchalabError as exc:
            problems.append(f"at strength {strength}: {exc}")
            continue
        if not chars:
            problems.append(f"at strength {strength}: no characters left to draw")
            continue
        for i in range(count):
            rng = np.random.default_rng([int(strength * 10), i])
            length = int(rng.integers(cls.min_length, min(cls.max_length, 8) + 1))
            text = "".join(rng.choice(list(chars), length))
            try:
                first = style.render(text, np.random.default_rng([7, i]), params)
                again = style.render(text, np.random.default_rng([7, i]), params)
            except Exception as exc:
                problems.append(f"render({text!r}) at strength {strength} raised {type(exc).__name__}: {exc}")
                continue
            if not isinstance(first, Rendered):
                problems.append(f"render() returned a {type(first).__name__}, not a Rendered")
                continue
            image = first.image
            wrong = media.check(image) if isinstance(image, np.ndarray) else f"a {type(image).__name__}"
            if wrong:
                problems.append(f"render() returned {wrong}")
                continue
            if image.ndim == 3 and not (8 <= image.shape[0] <= MAX_SIDE and 8 <= image.shape[1] <= MAX_SIDE):
                problems.append(f"image of {image.shape[1]}x{image.shape[0]} pixels: sides must be 8 to {MAX_SIDE}")
            # a sound's boxes span samples [x0, x1) of its one row
            problems += _box_problems(first.boxes, text, image.shape if image.ndim == 3 else (1, len(image)))
            if not np.array_equal(image, again.image) or list(first.boxes) != list(again.boxes):
                problems.append("the same seed gave different images: draw randomness only from `rng`")
    _fail_if(problems, f"style {cls.name!r}")


def _challenge_problems(style, count: int) -> list[str]:
    """A style of a kind other than text: challenge() gives an image, a question and an answer its
    kind can read back from labels.csv, the same bytes for the same seed."""
    kind, problems = get_kind(style.kind), []
    for strength in (0.0, 0.5, 1.0):
        try:
            params = style.resolve(strength)
            style.check(params)
        except CaptchalabError as exc:
            problems.append(f"at strength {strength}: {exc}")
            continue
        for i in range(count):
            try:
                first = style.challenge(np.random.default_rng([7, i]), params)
                again = style.challenge(np.random.default_rng([7, i]), params)
            except Exception as exc:
                problems.append(f"challenge() at strength {strength} raised {type(exc).__name__}: {exc}")
                continue
            if not isinstance(first, Challenge):
                problems.append(f"challenge() returned a {type(first).__name__}, not a Challenge")
                continue
            image = first.image
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                problems.append(
                    f"challenge() image is {getattr(image, 'dtype', type(image))} of shape "
                    f"{getattr(image, 'shape', '?')}, expected HxWx3 uint8 (BGR)"
                )
                continue
            try:
                header = ["filename", *kind.columns]
                cells = dict(zip(header[1:], kind.row(first.question, first.answer)))
                if kind.parse_row(cells)[1] != first.answer:
                    problems.append(f"answer {first.answer!r} is not in its canonical form")
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(
                    f"question {first.question!r} / answer {first.answer!r} do not fit the {kind.name} kind: {exc}"
                )
            problems += [p for p in kind.check_challenge(first, image) if p not in problems]
            if not np.array_equal(image, again.image) or first.answer != again.answer:
                problems.append("the same seed gave different challenges: draw randomness only from `rng`")
    return problems


def _captchas(charset: str, count: int, seed: int, kind: str = "text"):
    shape = get_kind(kind)
    style = "clean" if shape.characters else shape.example_style
    spec = GenerationSpec(style, count, 4, 4, charset, seed=seed, strength=0.3)
    return Source(spec=spec)


def _reading_problems(readings, prepared: list, charset: str, kind: str = "text") -> list[str]:
    if not isinstance(readings, list) or len(readings) != len(prepared):
        return [
            f"read_prepared() must return a list of one Reading per image "
            f"(got {type(readings).__name__} of {len(readings) if hasattr(readings, '__len__') else '?'})"
        ]
    problems, units = [], get_kind(kind).units
    for r in readings:
        if not isinstance(r, Reading) or not isinstance(r.text, str):
            problems.append(f"read_prepared() returned {r!r}, not a Reading with a text")
            continue
        if any(c not in charset for c in r.text):
            problems.append(f"read {r.text!r}: characters outside {charset!r}")
        if r.confidence and (
            len(r.confidence) != units(r.text)
            or not all(isinstance(c, (float, int)) and 0 <= c <= 1 for c in r.confidence)
        ):
            problems.append(
                f"confidence {r.confidence!r} is not one probability in [0, 1] per "
                f"{get_kind(kind).unit} of {r.text!r} (or empty)"
            )
        if r.boxes is not None and r.crops is not None and len(r.crops) != len(r.boxes):
            problems.append("crops and boxes differ in number")
    return problems


def check_attacker(cls, charset: str = DIGITS, hparams: dict | None = None, count: int = 24) -> None:
    """Prepare and read a few generated CAPTCHAs, and for a trainable attacker build, train
    (one short epoch through `train captcha`'s pipeline), save, load safely and read again; for a
    differentiable one, evaluate the adversarial loss. `hparams` may shrink the model."""
    problems = []
    try:
        cls.check_contract()
        attacker = cls(charset, hparams or {})
    except Exception as exc:
        raise ContractError(f"attacker {getattr(cls, 'name', cls)!r}: {exc}") from None
    source = _captchas(charset, count, seed=5, kind=cls.kind)
    samples = [source.sample(i) for i in range(8)]
    prepared = []
    characters = get_kind(cls.kind).characters
    if not characters:
        attacker.classes = source.classes()
    for s in samples:
        try:
            hint = s.question if s.question is not None else len(s.text) if cls.uses_length else None
            item = attacker.prepare(s.image, hint)
            pickle.dumps(item)
            prepared.append(item)
        except Exception as exc:
            problems.append(f"prepare() must return something picklable without the model: {type(exc).__name__}: {exc}")
            break
    _fail_if(problems, f"attacker {cls.name!r}")
    with tempfile.TemporaryDirectory(prefix="captchalab-check-") as tmp:
        if cls.trainable:
            from .train import train_attacker

            out = Path(tmp) / "model.keras"
            try:
                info = train_attacker(attacker, source, out, TrainSettings(epochs=1, batch_size=8, seed=1), workers=0)
                if "val_accuracy" not in info or not isinstance(info.get("history"), list):
                    problems.append("fit() must return at least val_accuracy and history (a list of epochs)")
                attacker = load_attacker(out)
            except Exception as exc:
                problems.append(f"training, saving or loading (safe_mode) failed: {type(exc).__name__}: {exc}")
                _fail_if(problems, f"attacker {cls.name!r}")
        try:
            problems += _reading_problems(
                attacker.read_prepared(prepared), prepared, charset if characters else "-0123456789 ", cls.kind
            )
        except Exception as exc:
            problems.append(f"read_prepared() raised {type(exc).__name__}: {exc}")
        if cls.differentiable:
            try:
                import tensorflow as tf

                images, texts, boxes = [s.image for s in samples], [s.text for s in samples], [s.boxes for s in samples]
                asked = {} if characters else {"questions": [s.question for s in samples]}
                x0, _, constants = attacker.adversarial_objective(images, texts, boxes, **asked)
                loss = np.asarray(attacker.adversarial_loss(tf.constant(x0), constants))
                if loss.shape != (len(images),) or not np.isfinite(loss).all():
                    problems.append(f"adversarial_loss() must give one finite loss per image, got shape {loss.shape}")
            except Exception as exc:
                problems.append(f"adversarial_objective()/adversarial_loss() failed: {type(exc).__name__}: {exc}")
    _fail_if(problems, f"attacker {cls.name!r}")


def sample_photo(name: str) -> np.ndarray:
    """One of scikit-image's sample pictures, BGR."""
    import importlib.resources

    import cv2

    return cv2.imread(str(importlib.resources.files("skimage") / "data" / name), cv2.IMREAD_COLOR)


def sample_photo_folder(folder: str | Path) -> Path:
    """A tile folder of real photographs (CLASS/NN.jpg): per class of SAMPLE_PHOTOS, three crops of
    each of its pictures and their mirror images (needs scikit-image)."""
    import cv2

    folder = Path(folder)
    for label, names in SAMPLE_PHOTOS.items():
        (folder / label).mkdir(parents=True)
        k = 0
        for name in names:
            picture = sample_photo(name)
            h, w = picture.shape[:2]
            for x0, y0, x1, y1 in ((0, 0, 1, 1), (0.05, 0.05, 0.9, 0.95), (0.1, 0, 1, 0.9)):
                crop = picture[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
                for flipped in (crop, cv2.flip(crop, 1)):
                    cv2.imwrite(str(folder / label / f"{k:02d}.jpg"), flipped)
                    k += 1
    return folder
