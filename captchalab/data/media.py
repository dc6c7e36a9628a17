"""What a challenge's main file holds, by the medium its kind declares (`Kind.media`): pictures
(PNG written, any image format read through `images.decode_image`) or sound (16-bit WAV
written, WAV read through `sound.decode_wav`). The data layer writes, reads and checks a
challenge's media here and nowhere else; what a report or a page draws of it is the kind's
(`Kind.picture`). A challenge's further parts (a slider's piece, a click strip) are pictures
whatever the medium.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .. import sound
from ..errors import CaptchalabError
from .images import IMAGE_SUFFIXES, ImageError, ImageLimits, decode_image, read_file


@dataclass(frozen=True)
class Media:
    name: str
    mime: str  # what a page is told it is
    suffix: str  # what generated datasets write
    suffixes: tuple[str, ...]  # what a folder's files may end in (lower case)
    dtype: type  # what a style's array is taken as
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes, ImageLimits], np.ndarray]  # ImageError (its one-line reason) on bad bytes
    check: Callable[[np.ndarray], str]  # what a style's array breaks of the medium ("" when nothing)

    def read(self, path: str | os.PathLike, limits: ImageLimits | None = None) -> np.ndarray:
        """One file of this medium, read and decoded safely; ImageError says why not (not the path)."""
        limits = limits or ImageLimits.from_env()
        return self.decode(read_file(path, limits), limits)

    def data_uri(self, media: np.ndarray) -> str:
        """The challenge as a data URL for a page (a PNG picture, a WAV sound)."""
        import base64

        return f"data:{self.mime};base64," + base64.b64encode(self.encode(media)).decode()

    def from_data_uri(self, uri: str) -> np.ndarray:
        """What `data_uri` sent, decoded safely (simulated participants read the page this way)."""
        import base64

        return self.decode(base64.b64decode(uri.partition(",")[2]), ImageLimits.from_env())


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _picture_problem(image: np.ndarray) -> str:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f"an image of {image.dtype} of shape {image.shape}, expected HxWx3 uint8 (BGR)"
    return ""


def _decode_sound(data: bytes, limits: ImageLimits) -> np.ndarray:
    """WAV bytes through the one sound decoder; its refusal as the ImageError every reader of a
    challenge's file catches (a skipped file, a 400 upload), with the decoder's reason."""
    try:
        return sound.decode_wav(data)
    except sound.AudioError as exc:
        raise ImageError(str(exc)) from None


def _sound_problem(samples: np.ndarray) -> str:
    if samples.ndim != 1 or samples.dtype != np.int16:
        return f"audio of shape {samples.shape} and type {samples.dtype}, expected 1-D int16 samples"
    if not len(samples) or len(samples) > sound.max_seconds() * sound.SAMPLE_RATE:
        return f"{len(samples) / sound.SAMPLE_RATE:.1f} s of audio, outside 0-{sound.max_seconds():g} s"
    return ""


MEDIA = {
    "image": Media(
        "image",
        "image/png",
        ".png",
        tuple(sorted(IMAGE_SUFFIXES)),
        np.uint8,
        _png,
        decode_image,
        _picture_problem,
    ),
    "audio": Media(
        "audio",
        "audio/wav",
        ".wav",
        sound.AUDIO_SUFFIXES,
        np.int16,
        sound.wav_bytes,
        _decode_sound,
        _sound_problem,
    ),
}


def media_of_uri(uri: str) -> Media:
    """The medium a page's data URL holds, by its MIME type (pictures unless it says audio)."""
    return MEDIA["audio"] if uri.startswith("data:audio/") else MEDIA["image"]


def media_of(kind) -> Media:
    """The medium of a Kind (its `media`)."""
    if kind.media not in MEDIA:
        raise CaptchalabError(f"kind {kind.name!r} declares media {kind.media!r}: use one of {', '.join(MEDIA)}")
    return MEDIA[kind.media]


def all_suffixes() -> set[str]:
    return {suffix for media in MEDIA.values() for suffix in media.suffixes}
