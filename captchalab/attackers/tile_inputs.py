"""What the image-grid readers feed their networks and how they choose a selection: cutting a
challenge into tiles, the training augmentations (line art, random convolutions, mirror images),
per-tile training targets, and the likeliest selection given the sizes training answers had."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CaptchalabError
from ..registry import Param


def cut(image: np.ndarray, grid: int, side: int) -> np.ndarray:
    """The grid x grid tiles of a challenge image, row by row, each resized to side x side: equal
    parts of the image, so the thin gutters of a 3x3 grid fall at the tiles' edges."""
    h, w = image.shape[:2]
    return np.stack(
        [
            cv2.resize(
                image[r * h // grid : (r + 1) * h // grid, c * w // grid : (c + 1) * w // grid],
                (side, side),
                interpolation=cv2.INTER_AREA,
            )
            for r in range(grid)
            for c in range(grid)
        ]
    )


def line_art(image: np.ndarray, square: int) -> np.ndarray:
    """A uint8 BGR image redrawn as outlined flat art (OpenMoji's look): colours flattened by a
    median filter, dark contours along its strong edges (a pixel thick per 24 pixels of a
    `square`-pixel tile), none on the outer ring, where a 3x3 grid's gutter would draw a frame."""
    flat = cv2.medianBlur(image, 3)
    edges = cv2.Canny(cv2.cvtColor(flat, cv2.COLOR_BGR2GRAY), 100, 250)
    width, ring = max(1, square // 24), max(1, square // 16)
    if width > 1:
        edges = cv2.dilate(edges, np.ones((width, width), np.uint8))
    edges[:ring], edges[-ring:], edges[:, :ring], edges[:, -ring:] = 0, 0, 0, 0
    flat[edges > 0] = 24
    return flat


def random_convolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uint8 BGR image through a random convolution (RandConv, Xu et al., ICLR 2021: 1, 3, 5 or 7
    pixels wide, weights drawn as He-normal over its three colours), rescaled to the image's own
    mean and contrast and mixed with it by a random share: colours and textures change, the shapes
    the reader should learn stay."""
    x = image.astype(np.float32)
    k = int(rng.choice((1, 3, 5, 7)))
    weights = rng.normal(0.0, 1.0 / np.sqrt(3 * k * k), (3, 3, k, k)).astype(np.float32)
    out = np.stack(
        [
            sum(cv2.filter2D(x[..., c], -1, weights[o, c], borderType=cv2.BORDER_REFLECT) for c in range(3))
            for o in range(3)
        ],
        axis=-1,
    )
    out = (out - out.mean()) / (out.std() + 1e-6) * (x.std() + 1e-6) + x.mean()
    mix = rng.uniform()
    return np.clip(mix * x + (1 - mix) * out, 0, 255).astype(np.uint8)


def augment(
    inputs: np.ndarray,
    rng: np.random.Generator,
    strength: float,
    square: int,
    colour: float = 0.0,
    outline: float = 0.0,
    shifts: bool = True,
    randconv: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror images, shifts of a few pixels (8% of a `square`-pixel tile at strength 1; none with
    `shifts=False`), brightness and, with `colour`, saturation changes, with `outline`, some inputs
    redrawn as line art, with `randconv`, some through a random convolution, of uint8 inputs
    (N, h, w, 3); the augmented inputs and which were mirrored."""
    if strength <= 0:
        return inputs, np.zeros(len(inputs), bool)
    out = inputs.copy()
    if outline > 0:  # drawn only when asked, so runs without it keep their random draws
        for i in np.flatnonzero(rng.random(len(out)) < 0.5 * outline):
            out[i] = line_art(out[i], square)
    if randconv > 0:  # drawn only when asked, so runs without it keep their random draws
        for i in np.flatnonzero(rng.random(len(out)) < 0.5 * randconv):
            out[i] = random_convolution(out[i], rng)
    flip = rng.random(len(out)) < 0.5
    out[flip] = out[flip, :, ::-1]
    if shifts:
        shift = max(1, int(round(0.08 * square * strength)))
        for i, (dx, dy) in enumerate(rng.integers(-shift, shift + 1, (len(out), 2))):
            out[i] = cv2.warpAffine(
                out[i], np.float32([[1, 0, dx], [0, 1, dy]]), out.shape[2:0:-1], borderMode=cv2.BORDER_REFLECT
            )
    gain = 1 + rng.uniform(-0.2, 0.2, (len(out), 1, 1, 1)) * strength
    out = out * gain
    if colour > 0:  # drawn only when asked, so runs without it keep their random draws
        saturation = rng.uniform(1 - 0.6 * colour, 1 + 0.6 * colour, (len(out), 1, 1, 1))
        saturation[rng.random(len(out)) < 0.3 * colour] = 0.0
        grey = out @ np.float32([0.114, 0.587, 0.299])  # BGR luma
        out = grey[..., None] + saturation * (out - grey[..., None])
    return np.clip(out, 0, 255).astype(np.uint8), flip


def mirrored(targets: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Per-input targets (inputs x tiles each scores [x classes]) after `augment` mirrored the
    `flipped` inputs: an input scoring a whole grid mirrors its answer (column c becomes column
    n-1-c); a tile's own target does not move."""
    if targets.shape[1] == 1 or not flipped.any():
        return targets
    n = int(round(targets.shape[1] ** 0.5))
    out = targets.copy()
    out[flipped] = targets[flipped].reshape(-1, n, n, *targets.shape[2:])[:, :, ::-1].reshape(-1, *targets.shape[1:])
    return out


def answer_sizes(examples, tiles: int) -> list[int]:
    """How many training answers selected 0, 1, ... `tiles` tiles."""
    counts = np.bincount([len(t.split()) for _, t in examples], minlength=tiles + 1)
    return [int(c) for c in counts[: tiles + 1]]


def likeliest_selection(p: np.ndarray, sizes: list[int]) -> list[int]:
    """The set of tiles most likely to be the answer, taking each tile's probability `p` as
    independent and the answer's size from the counts `sizes` (add-one smoothed, so a size never
    seen stays possible): of every size k the best set is the k likeliest tiles, so only their
    number is chosen. With no counts this is every tile above one half."""
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    order = np.argsort(-p, kind="stable")
    counts = np.zeros(len(p) + 1)
    counts[: min(len(sizes), len(p) + 1)] = sizes[: len(p) + 1]
    prior = (counts + 1) / (counts.sum() + len(p) + 1)
    ranked = np.log(p[order]) - np.log1p(-p[order])  # what adding each next tile changes
    scores = np.log(prior) + np.concatenate([[0.0], np.cumsum(ranked)])
    return sorted(order[: int(np.argmax(scores))].tolist())


def coverage_threshold(examples) -> float | None:
    """The coverage at which the training answers start counting a square, from the challenges
    that record each square's coverage: between the smallest share selected and the largest below
    it left out, geometrically. None when none records it, or when coverage does not explain the
    answers (more than 1% of the squares left out cover at least the smallest selected; a few may,
    as the recorded shares are rounded)."""
    chosen, left = [], []
    for p, t in examples:
        if p.get("coverage") is not None:
            selected = np.isin(np.arange(len(p["coverage"])), [int(i) for i in t.split()])
            chosen.extend(p["coverage"][selected])
            left.extend(p["coverage"][~selected])
    if not chosen or min(chosen) <= 0:
        return None
    high, left = min(chosen), np.asarray(left)
    if left.size and np.mean(left >= high) > 0.01:
        return None
    below = left[left < high]
    return float(np.sqrt(max(below.max(initial=0.0), high / 4) * high))


UNKNOWN = -1.0  # a class target no label decides (left out of the loss)


def tile_examples(examples, classes: int) -> tuple[list, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The training challenges whose prompt class the reader knows, and their network inputs as
    (inputs, prompt index per input, targets: per input, per tile it scores, per class, 1.0 where
    the tile shows the class, 0.0 where it does not, UNKNOWN where nothing says). The answer
    decides the prompt's class for every tile; a challenge that records each tile's classes
    (`tile_classes`, `tile_clutter` in its prepared item) decides the other classes too."""
    usable = [(p, t) for p, t in examples if p["prompt"] >= 0]
    if not usable:
        raise CaptchalabError("no training challenge whose prompt class the reader knows")
    inputs = np.concatenate([p["inputs"] for p, _ in usable])
    prompts = np.concatenate([np.full(len(p["inputs"]), p["prompt"], np.int32) for p, _ in usable])
    rows = []
    for p, t in usable:
        n = p["grid"] ** 2
        target = np.full((n, classes), UNKNOWN, np.float32)
        if p.get("tile_classes") is not None:
            target[:] = 0.0
            for k, (shown, clutter) in enumerate(zip(p["tile_classes"], p["tile_clutter"])):
                target[k, [c for c in clutter if c >= 0]] = UNKNOWN  # small and partial: not what a tile is of
                if shown >= 0:
                    target[k, shown] = 1.0
        target[:, p["prompt"]] = np.isin(np.arange(n), [int(i) for i in t.split()])
        rows.append(target.reshape(len(p["inputs"]), -1, classes))
    return usable, (inputs, prompts, np.concatenate(rows))


def well_formed_tiles(record, count: int) -> bool:
    """Whether a challenge's `tiles` record says, for each of its `count` tiles, the class it
    shows (a name, or None for none) and the classes of the clutter over it (a list of names)."""
    return (
        isinstance(record, list)
        and len(record) == count
        and all(
            isinstance(t, dict)
            and "class" in t
            and isinstance(t["class"], (str, type(None)))
            and isinstance(t.get("clutter", []), list)
            and all(isinstance(c, str) for c in t.get("clutter", []))
            for t in record
        )
    )


# the hyper-parameters every grid reader declares: how it cuts, augments and chooses
GRID_PARAMS = (
    Param("tile", int, 32, 16, 96, "side in pixels each tile is resized to"),
    Param(
        "sizes",
        bool,
        True,
        help="select the likeliest set given each tile's probability and how many tiles "
        "the training answers selected (false: every tile at or above `threshold`)",
    ),
    Param(
        "threshold",
        float,
        0.5,
        0.01,
        0.99,
        "with sizes=false, select a tile when the prompt's probability is at least this",
    ),
    Param(
        "budget",
        int,
        3_000_000,
        1,
        10**9,
        "training tiles seen at most (the run ends sooner when the validation score stops improving)",
    ),
    Param("batch_size", int, 128, 1, 4096, "tiles per training batch"),
    Param("learning_rate", float, 1e-3, 1e-6, 1.0, "peak learning rate (half when fine-tuning)"),
    Param("patience", int, 3, 1, 1000, "epochs without a validation gain before the learning rate is cut"),
    Param("augment", float, 1.0, 0.0, 2.0, "strength of the training augmentation (flips, shifts, brightness)"),
    Param(
        "colour",
        float,
        0.0,
        0.0,
        1.0,
        "saturation changes in training, some inputs wholly grey (0: none), so "
        "the reader leans on shapes more than on an art style's palette",
    ),
    Param(
        "outline",
        float,
        0.0,
        0.0,
        1.0,
        "share of training inputs redrawn as line art (flattened colours, "
        "dark contours along their edges; 1: half of them), for art styles drawn in outlines (0: none)",
    ),
    Param(
        "randconv",
        float,
        0.0,
        0.0,
        1.0,
        "share of training inputs passed through a random convolution "
        "(RandConv): new colours and textures, the same shapes (1: half of them; 0: none)",
    ),
)
# the readers of one tile at a time: they can learn each tile's class where a challenge records it
TILE_PARAMS = GRID_PARAMS + (
    Param(
        "every_class",
        bool,
        True,
        help="where the training challenges record which class each tile shows "
        "(a generated grid3's challenges.json), train every class's score on every tile, not the prompt's "
        "alone (false: the answers alone, as for a labelled real dataset)",
    ),
    Param(
        "flips",
        bool,
        True,
        help="read each tile and its mirror image and average their scores (training "
        "mirrors tiles too; false: one read, half the network's work)",
    ),
)
