"""The one place where a user's image bytes become pixels.

Datasets, `visualize --image`, `explore` uploads: every image from the outside world goes
through `decode_image`. Before anything is decoded, the file size and the dimensions the header
claims are checked against limits (Pillow reads only the header), so a file claiming
100,000 x 100,000 pixels costs nothing. OpenCV then decodes inside a guard. Every failure is an
`ImageError` with a one-line reason; callers skip and name the file, or show the line.

The result is an HxWx3 uint8 BGR image: grey is expanded, 16-bit is reduced to 8-bit, and
transparency is composited onto white (a transparent CAPTCHA is dark ink on nothing); or, with
`alpha=True` (object art to be placed on scenes), HxWx4 BGRA, opaque where the file has no alpha.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import CaptchalabError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE_ENV, MAX_MB_ENV = "CAPTCHALAB_MAX_IMAGE_SIDE", "CAPTCHALAB_MAX_IMAGE_MB"


class ImageError(CaptchalabError):
    """An image that cannot be used; the message is one line saying why."""


@dataclass(frozen=True)
class ImageLimits:
    max_side: int = 4000  # pixels, width and height each
    max_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_env(cls) -> "ImageLimits":
        """Defaults, overridden by $CAPTCHALAB_MAX_IMAGE_SIDE and $CAPTCHALAB_MAX_IMAGE_MB."""
        try:
            side = int(os.environ.get(MAX_SIDE_ENV, cls.max_side))
            megabytes = float(os.environ.get(MAX_MB_ENV, cls.max_bytes / 2**20))
        except ValueError:
            raise CaptchalabError(f"${MAX_SIDE_ENV} and ${MAX_MB_ENV} must be numbers") from None
        if side < 1 or megabytes <= 0:
            raise CaptchalabError(f"${MAX_SIDE_ENV} and ${MAX_MB_ENV} must be positive")
        return cls(side, int(megabytes * 2**20))


def _header_size(data: bytes, limits: ImageLimits) -> tuple[int, int]:
    """(width, height) from the header alone, or ImageError."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        # a PNG states its size in its first chunk: read without Pillow, for every CAPTCHA of an attack
        return struct.unpack(">II", data[16:24])
    from PIL import Image, UnidentifiedImageError

    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # only the header is read; our limit decides, and names the size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except UnidentifiedImageError:
        raise ImageError("not an image in a known format") from None
    except Exception as exc:  # a hostile header can trip any parser error; all mean "unusable"
        raise ImageError(f"unreadable image header ({type(exc).__name__})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _to_bgr8(image: np.ndarray, alpha: bool = False) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA) if alpha else image
    if channels == 4:
        if alpha:
            return image
        weight = image[..., 3:].astype(np.float32) / 255.0
        return (image[..., :3] * weight + 255.0 * (1.0 - weight) + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported channel count {channels}")


def decode_image(data: bytes, limits: ImageLimits | None = None, alpha: bool = False) -> np.ndarray:
    """Decode image bytes into HxWx3 uint8 BGR (HxWx4 BGRA with `alpha`), or raise ImageError
    (never anything else)."""
    limits = limits or ImageLimits.from_env()
    if not data:
        raise ImageError("empty file")
    if len(data) > limits.max_bytes:
        raise ImageError(f"{len(data) / 2**20:.1f} MB, above the limit of {limits.max_bytes / 2**20:.0f} MB")
    width, height = _header_size(data, limits)
    if width < 1 or height < 1 or width > limits.max_side or height > limits.max_side:
        raise ImageError(f"{width} x {height} pixels, outside the limit of {limits.max_side} x {limits.max_side}")
    # OpenCV's own size check backs ours up, should a header lie to Pillow but not to OpenCV
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(limits.max_side**2))
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"cannot decode ({str(exc).strip().splitlines()[-1][:120]})") from None
    if image is None or image.size == 0:
        raise ImageError("cannot decode (corrupt or truncated)")
    return _to_bgr8(image, alpha)


def read_image(path: str | os.PathLike, limits: ImageLimits | None = None, alpha: bool = False) -> np.ndarray:
    """Read and decode one image file; ImageError names what is wrong (not the path)."""
    limits = limits or ImageLimits.from_env()
    return decode_image(read_file(path, limits), limits, alpha)


def read_file(path: str | os.PathLike, limits: ImageLimits) -> bytes:
    """The bytes of one regular file of at most `limits.max_bytes` (a FIFO, a device or a file
    that grows past the limit while read is refused); ImageError names what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block us
    except FileNotFoundError:
        raise ImageError("missing") from None
    except OSError as exc:
        raise ImageError(f"cannot open ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageError("not a regular file")
        if info.st_size > limits.max_bytes:
            raise ImageError(f"{info.st_size / 2**20:.1f} MB, above the limit of {limits.max_bytes / 2**20:.0f} MB")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limits.max_bytes + 1)  # the file may grow after fstat
    except OSError as exc:
        raise ImageError(f"cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limits.max_bytes:
        raise ImageError(f"above the limit of {limits.max_bytes / 2**20:.0f} MB")
    return data


def read_image_or_fail(path: Path, limits: ImageLimits | None = None) -> np.ndarray:
    """`read_image` for a single image the user named: the error names the file."""
    try:
        return read_image(path, limits)
    except ImageError as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from None
