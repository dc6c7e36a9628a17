"""Sound for audio CAPTCHAs (kind "audio"): the one safe WAV decoder, the encoder, the resampler
and the log-mel spectrogram readers and reports use.

In the house an audio challenge's waveform travels where an image travels (a `Sample`'s `image`,
a `Drawn`'s, what `prepare` is given): a 1-D int16 array of mono samples at SAMPLE_RATE. Every
WAV from the outside world goes through `decode_wav`: the RIFF chunks are walked by hand (no
parser trusts a header's sizes), the format is checked before any sample is read, and the
duration is capped before the samples are converted. 8-, 16-, 24- and 32-bit PCM and 32- and
64-bit float, mono or multi-channel (averaged to mono), at any rate from 4 to 192 kHz (resampled
to SAMPLE_RATE by scipy's polyphase filter, `scipy.signal.resample_poly`) are read; anything
else is an `AudioError` with a one-line reason.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction

import numpy as np

from .errors import CaptchalabError

SAMPLE_RATE = 16000  # Hz: what readers hear and datasets store (pocketsphinx's acoustic model wants it)
MAX_SECONDS_ENV = "CAPTCHALAB_MAX_AUDIO_SECONDS"
MAX_SECONDS = 30.0  # a challenge longer than this is refused (a site's audio CAPTCHA lasts 3-15 s)
AUDIO_SUFFIXES = (".wav",)
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_STREAMED = (0, 0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000)


class AudioError(CaptchalabError):
    """Audio that cannot be used; the message is one line saying why."""


def max_seconds() -> float:
    """The longest audio read: MAX_SECONDS, or $CAPTCHALAB_MAX_AUDIO_SECONDS."""
    try:
        value = float(os.environ.get(MAX_SECONDS_ENV, MAX_SECONDS))
    except ValueError:
        raise CaptchalabError(f"${MAX_SECONDS_ENV} must be a number of seconds") from None
    if not 0 < value <= 3600:
        raise CaptchalabError(f"${MAX_SECONDS_ENV} must be between 0 and 3600 seconds")
    return value


def _chunks(data: bytes):
    """(id, body) of each RIFF chunk after the WAVE header; a chunk claiming more bytes than the
    file holds is an error, but for the placeholder sizes a program writing to a pipe puts in its
    data chunk (espeak-ng --stdout writes 0x7FFFF000), which run to the end."""
    at = 12
    while at + 8 <= len(data):
        cid, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        body_at = at + 8
        if cid == b"data" and size in _STREAMED:
            size = len(data) - body_at
        if body_at + size > len(data):
            raise AudioError(
                f"its {cid.decode('latin-1')!r} chunk claims {size} bytes, the file holds {len(data) - body_at}"
            )
        yield cid, data[body_at : body_at + size]
        at = body_at + size + (size & 1)  # chunks are padded to even sizes


def decode_wav(data: bytes, seconds: float | None = None) -> np.ndarray:
    """WAV bytes -> int16 mono samples at SAMPLE_RATE, or AudioError (never anything else).
    `seconds`: the longest audio accepted (default `max_seconds()`)."""
    limit = seconds or max_seconds()
    if not data:
        raise AudioError("empty file")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    if data[:4] == b"RIFX":
        raise AudioError("big-endian WAV (RIFX) is not supported")
    fmt = body = None
    for cid, chunk in _chunks(data):
        if cid == b"fmt " and fmt is None:
            fmt = chunk
        elif cid == b"data":
            body = chunk
            break
    if fmt is None or len(fmt) < 16:
        raise AudioError("no format chunk before the samples")
    if body is None:
        raise AudioError("no data chunk")
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the plain tag
    if tag not in (_PCM, _FLOAT):
        raise AudioError(f"format tag {tag} is neither PCM nor float")
    widths = {_PCM: (8, 16, 24, 32), _FLOAT: (32, 64)}[tag]
    if bits not in widths:
        raise AudioError(f"{bits}-bit {'PCM' if tag == _PCM else 'float'} samples are not supported")
    if not 1 <= channels <= 8:
        raise AudioError(f"{channels} channels")
    if not 4000 <= rate <= 192000:
        raise AudioError(f"sample rate {rate} Hz, outside 4-192 kHz")
    width = bits // 8
    if align != width * channels:
        raise AudioError(f"block align {align} does not match {channels} channels of {bits} bits")
    frames = len(body) // align
    if frames / rate > limit:
        raise AudioError(f"{frames / rate:.1f} s long, above the limit of {limit:g} s")
    if frames == 0:
        raise AudioError("no samples")
    count = frames * channels  # samples, read in place (a trailing partial frame is left out)
    if tag == _FLOAT:
        samples = np.frombuffer(body, "<f4" if bits == 32 else "<f8", count).astype(np.float64)
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0) * 32767.0
    elif bits == 8:
        samples = (np.frombuffer(body, np.uint8, count).astype(np.float64) - 128.0) * 256.0  # 8-bit WAV is unsigned
    elif bits == 24:
        b = np.frombuffer(body, np.uint8, count * 3).reshape(-1, 3).astype(np.int32)
        samples = (((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 8).astype(np.float64) / 256.0
    else:
        samples = np.frombuffer(body, "<i2" if bits == 16 else "<i4", count).astype(np.float64)
        samples /= 1 if bits == 16 else 65536.0
    mono = samples.reshape(frames, channels).mean(axis=1)
    return to_int16(resample(mono, rate, SAMPLE_RATE))


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, rate: int, to: int = SAMPLE_RATE) -> np.ndarray:
    """Samples at `rate` Hz resampled to `to` Hz by scipy's polyphase filter (float64)."""
    samples = np.asarray(samples, np.float64)
    if rate == to:
        return samples
    from scipy.signal import resample_poly

    ratio = Fraction(to, rate)
    return resample_poly(samples, ratio.numerator, ratio.denominator)


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """int16 mono samples as a 16-bit PCM WAV file."""
    pcm = np.ascontiguousarray(samples, "<i2").tobytes()
    fmt = struct.pack("<HHIIHH", _PCM, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(pcm))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )


# -- what a reader hears and a report draws ------------------------------------------------------
HOP = 160  # samples between frames: 10 ms
WINDOW = 400  # 25 ms
MELS = 64


def _mel_filters(mels: int = MELS, fft: int = 512, rate: int = SAMPLE_RATE, low: float = 60.0, high: float = 7600.0):
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(mel(low), mel(high), mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(fft, 1.0 / rate)
    filters = np.zeros((fft // 2 + 1, mels), np.float32)
    for m in range(mels):
        left, centre, right = edges[m : m + 3]
        rising = (bins - left) / (centre - left)
        falling = (right - bins) / (right - centre)
        filters[:, m] = np.maximum(0.0, np.minimum(rising, falling))
    return filters


_FILTERS = _mel_filters()
_WINDOW = np.hanning(WINDOW).astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """The log-mel spectrogram of int16 samples at SAMPLE_RATE: (frames, MELS) float32, one frame
    every 10 ms over a 25 ms window, log(1 + power), roughly 0-20."""
    x = np.asarray(samples, np.float32) / 32768.0
    if len(x) < WINDOW:
        x = np.pad(x, (0, WINDOW - len(x)))
    frames = 1 + (len(x) - WINDOW) // HOP
    index = np.arange(WINDOW)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(x[index] * _WINDOW, 512)) ** 2
    return np.log1p(1000.0 * spectrum @ _FILTERS).astype(np.float32)


def spectrogram_picture(samples: np.ndarray, height: int = 128) -> np.ndarray:
    """A BGR picture of the log-mel spectrogram (time across, pitch up), for reports and explore."""
    import cv2

    spec = log_mel(samples).T[::-1]
    top = max(float(spec.max()), 1e-6)
    grey = np.clip(spec / top * 255.0, 0, 255).astype(np.uint8)
    picture = cv2.applyColorMap(grey, cv2.COLORMAP_MAGMA)
    return cv2.resize(picture, (picture.shape[1], height), interpolation=cv2.INTER_NEAREST)
