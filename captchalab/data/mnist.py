"""Load MNIST from IDX (.gz or raw) or .npz files, offline first.

Search order: an explicit path, then $CAPTCHALAB_MNIST, then the Keras cache
(~/.keras/datasets/mnist.npz), then a `keras.datasets.mnist` download.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CaptchalabError

ENV_VAR = "CAPTCHALAB_MNIST"
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz")
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
HOW_TO_SUPPLY = (
    f"pass `data` (a path) or set ${ENV_VAR} to a folder holding the four MNIST IDX files "
    f"({', '.join(n + '[.gz]' for n in IDX_NAMES.values())}) or to an mnist.npz"
)


@dataclass
class Mnist:
    """MNIST as uint8 images (N, 28, 28) and uint8 labels (N,), with where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    file_hashes: dict[str, str] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw), validating magic number and size."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CaptchalabError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 8:
        raise CaptchalabError(f"{path}: truncated IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise CaptchalabError(f"{path}: wrong magic number {magic}, expected {expected_magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected_size = header + int(np.prod(dims))
    if len(raw) != expected_size:
        raise CaptchalabError(f"{path}: truncated or corrupt IDX file ({len(raw)} bytes, header says {expected_size})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise CaptchalabError(f"{folder}: missing {name}[.gz]; {HOW_TO_SUPPLY}")


def _validate(x: np.ndarray, y: np.ndarray, what: str, source: str) -> None:
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise CaptchalabError(f"{source}: {what} images have shape {x.shape}, expected (N, 28, 28)")
    if y.ndim != 1 or len(y) != len(x):
        raise CaptchalabError(f"{source}: {len(x)} {what} images but labels of shape {y.shape}")
    if len(y) and y.max() > 9:
        raise CaptchalabError(f"{source}: {what} labels outside 0..9 (max {int(y.max())})")


def _load_idx_folder(folder: Path) -> Mnist:
    paths = {key: _find_idx(folder, name) for key, name in IDX_NAMES.items()}
    arrays = {key: read_idx(p, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC) for key, p in paths.items()}
    data = Mnist(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        source=str(folder),
        file_hashes={p.name: _sha256(p) for p in paths.values()},
    )
    return data


def _load_npz(path: Path) -> Mnist:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k]) for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise CaptchalabError(f"{path}: not a valid MNIST .npz ({exc})") from None
    return Mnist(
        **{k: v.astype(np.uint8) for k, v in arrays.items()}, source=str(path), file_hashes={path.name: _sha256(path)}
    )


def _load_path(path: Path) -> Mnist:
    path = path.expanduser()
    if path.is_dir():
        npz = path / "mnist.npz"
        has_idx = any((path / f"{n}{s}").is_file() for n in IDX_NAMES.values() for s in (".gz", ""))
        data = _load_npz(npz) if npz.is_file() and not has_idx else _load_idx_folder(path)
    elif path.is_file() and path.suffix == ".npz":
        data = _load_npz(path)
    elif path.exists():
        raise CaptchalabError(f"{path}: expected a folder of IDX files or an .npz file")
    else:
        raise CaptchalabError(f"{path}: no such file or folder; {HOW_TO_SUPPLY}")
    _validate(data.x_train, data.y_train, "training", data.source)
    _validate(data.x_test, data.y_test, "test", data.source)
    return data


def load_mnist(path: str | os.PathLike | None = None, download: bool = True) -> Mnist:
    """Load MNIST: `path`, then $CAPTCHALAB_MNIST, then the Keras cache, then a download."""
    if path:
        return _load_path(Path(path))
    if os.environ.get(ENV_VAR):
        return _load_path(Path(os.environ[ENV_VAR]))
    cache = KERAS_CACHE.expanduser()
    if cache.is_file():
        return _load_path(cache)
    if download:
        try:
            import keras

            keras.datasets.mnist.load_data()
        except Exception as exc:  # any network failure looks different; all mean "offline"
            raise CaptchalabError(
                f"MNIST not found and download failed ({type(exc).__name__}); {HOW_TO_SUPPLY}"
            ) from None
        return _load_path(cache)
    raise CaptchalabError(f"MNIST not found; {HOW_TO_SUPPLY}")
