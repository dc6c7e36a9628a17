"""Atomic writes: write to a temporary path beside the target, then rename."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import CaptchalabError

# a write the machine refused (no room, a file-size limit, a read-only file system): no task's fault
WRITE_REFUSED = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


def _temp_beside(path: Path, suffix: str = "") -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CaptchalabError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def naming(path: str | os.PathLike):
    """An OSError inside names `path` (a write's own error names no file)."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def write_new(path: str | os.PathLike, data: bytes) -> None:
    """Write a file inside a folder that is itself written atomically (atomic_dir); a failed write
    (a full disk, a file-size limit) is an OSError naming the file."""
    with naming(path):
        Path(path).write_bytes(data)


class PieceFile:
    """A file inside a folder that is itself written atomically (atomic_dir), written piece by
    piece so that nothing of it need be held in memory; a failed write is an OSError naming it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with naming(self.path):
            self.file = open(self.path, "wb")

    def write(self, data: bytes) -> None:
        with naming(self.path):
            self.file.write(data)

    def close(self) -> None:
        with naming(self.path):
            self.file.close()

    def abandon(self) -> None:
        """Let go of it unfinished (its folder is being thrown away)."""
        with contextlib.suppress(OSError):
            self.file.close()


class JsonObjectFile(PieceFile):
    """A JSON object written entry by entry: the same bytes as to_json of the whole dict."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self.entries = 0

    def add(self, key: str, value) -> None:
        body = json.dumps(value, indent=2, default=_json_default).replace("\n", "\n  ")
        self.write(("{\n" if not self.entries else ",\n").encode() + f"  {json.dumps(key)}: {body}".encode())
        self.entries += 1

    def close(self) -> None:
        self.write(b"\n}\n" if self.entries else b"{}\n")
        super().close()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, to_json(obj))


def save_model_atomic(model, path: str | os.PathLike) -> None:
    """Save a Keras model so that `path` is either the old file or the complete new one."""
    path = Path(path)
    tmp = _temp_beside(path, suffix=".keras")  # Keras insists on the .keras suffix
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise CaptchalabError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def refuse_existing(out: str | os.PathLike, force: bool) -> None:
    """The one rule of every command that writes: an existing output (a file, or a folder that is
    not empty) is replaced only with --force."""
    out = Path(out)
    if not force and (out.is_file() or (out.is_dir() and any(out.iterdir()))):
        raise CaptchalabError(f"{out} already exists; pass `force` to replace it")
    if out.exists() and not out.is_dir() and not out.is_file():
        raise CaptchalabError(f"{out} exists and is neither a file nor a folder")


def check_empty_or_force(out: Path, force: bool, ours: str | None = None) -> None:
    """Refuse to replace a non-empty folder unless forced, or unless it holds the `ours` file
    (an earlier output of the same command, safe to redo)."""
    if out.exists() and not out.is_dir():
        raise CaptchalabError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force and not (ours and (out / ours).is_file()):
        raise CaptchalabError(
            f"{out} is not empty; pass `force` to replace it"
            if ours is None
            else f"{out} is not empty and holds no {ours}: refusing to replace it"
        )


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, force: bool = False, ours: str | None = None):
    """Yield a temporary folder that replaces `out` only if the block finishes.

    An existing non-empty `out` is replaced only with `force`, or when it holds the file named
    `ours` (so a report folder is redone, but a folder of someone's data never is)."""
    out = Path(out)
    check_empty_or_force(out, force, ours)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as exc:  # a write inside failed: name where it was going, not the temporary folder
        named = str(exc.filename or tmp)
        if named.startswith(str(tmp)):
            raise OSError(exc.errno, exc.strerror, str(out) + named[len(str(tmp)) :]) from None
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
