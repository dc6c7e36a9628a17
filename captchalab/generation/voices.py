"""Spoken characters and what an audio CAPTCHA does to them (kind "audio").

Voices that exist offline:
- `recorded`: the one recorded voice the `captcha` package ships (a WAV per digit and capital
  letter, 8 kHz 8-bit; BSD licence). Its `AudioCaptcha` draws its randomness from `secrets`, so it
  cannot be seeded: we read its files and do all the mixing ourselves, from the challenge's
  generator.
- `espeak-*`: eSpeak NG's voices (Debian's `espeak-ng`, GPL; run as a program with arguments,
  never through a shell), each a language variant, a voice variant, a speed and a pitch.

A clip is each character as the voice says it, at sound.SAMPLE_RATE, trimmed of silence;
clips are made once per process. Everything else (stretching, pitch, noise, reverberation,
filtering) draws from the `numpy.random.Generator` it is given, so a seed gives the same samples.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from ..charset import DIGITS
from ..errors import CaptchalabError
from ..manifest import sha256_bytes
from ..registry import Param
from ..sound import SAMPLE_RATE, decode_wav, to_int16
from .generator import Rendered

# name -> (eSpeak voice, words a minute, pitch 0-99): accents, sexes and speeds a site's TTS might use
ESPEAK_VOICES = {
    "espeak-us": ("en-us", 150, 45),
    "espeak-gb": ("en-gb", 140, 50),
    "espeak-us-f": ("en-us+f2", 150, 60),
    "espeak-gb-f": ("en-gb+f4", 135, 55),
    "espeak-scot": ("en-gb-scotland", 145, 40),
    "espeak-carib": ("en-029+m3", 160, 45),
    "espeak-rp-m": ("en-gb-x-rp+m7", 130, 30),
    "espeak-us-slow": ("en-us+klatt", 120, 50),
}
RECORDED = "recorded"
VOICES = (*ESPEAK_VOICES, RECORDED)
RECORDED_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_voices(text: str) -> list[str]:
    """`all`, `espeak` (every eSpeak voice) or names joined by + or commas; a one-line error names
    an unknown voice."""
    names = []
    for word in text.replace(",", "+").split("+"):
        word = word.strip()
        if word == "all":
            names += VOICES
        elif word == "espeak":
            names += ESPEAK_VOICES
        elif word in VOICES:
            names.append(word)
        elif word:
            raise CaptchalabError(f"voice {word!r}: use all, espeak or some of {', '.join(VOICES)}")
    if not names:
        raise CaptchalabError("voices: name at least one")
    return list(dict.fromkeys(names))


def check_voices(voices: list[str]) -> None:
    """Refuse, in one line, eSpeak voices where espeak-ng is not installed (every voice says
    every character of RECORDED_CHARS, the spoken styles' set)."""
    if any(v in ESPEAK_VOICES for v in voices) and shutil.which("espeak-ng") is None:
        raise CaptchalabError(
            "espeak-ng is not installed (Debian: apt install espeak-ng): use voices=recorded, or install it"
        )


def _recorded_file(char: str) -> Path:
    return Path(str(resources.files("captcha") / "data" / char.upper() / "default.wav"))


@functools.lru_cache(maxsize=None)
def espeak_version() -> str:
    done = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.split("text-to-speech:")[-1].split("Data at")[0].strip()


def voice_resources(voices: list[str]) -> dict:
    """What a dataset's manifest records of the voices: eSpeak NG's version, the recorded voice's hash."""
    out = {}
    if any(v in ESPEAK_VOICES for v in voices):
        out["espeak_ng"] = espeak_version()
    if RECORDED in voices:
        digest = "".join(sha256_bytes(_recorded_file(c).read_bytes()) for c in RECORDED_CHARS)
        out["recorded_voice_sha256"] = sha256_bytes(digest.encode())
    return out


@functools.lru_cache(maxsize=4096)
def clip(voice: str, char: str) -> np.ndarray:
    """`char` said by `voice`: float32 samples at SAMPLE_RATE in [-1, 1], peak 0.9, silence trimmed."""
    if voice == RECORDED:
        samples = decode_wav(_recorded_file(char).read_bytes()).astype(np.float32)
    else:
        name, speed, pitch = ESPEAK_VOICES[voice]
        try:
            done = subprocess.run(
                ["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "--stdout", char.lower()],
                capture_output=True,
                timeout=30,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise CaptchalabError(f"espeak-ng could not say {char!r} with voice {name}: {exc}") from None
        samples = decode_wav(done.stdout).astype(np.float32)
    return _trimmed(samples)


def _trimmed(samples: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > 0.02 * max(1.0, float(np.abs(samples).max())))
    if len(loud):
        samples = samples[max(0, loud[0] - 160) : loud[-1] + 160]
    samples = (0.9 * samples / max(1.0, float(np.abs(samples).max()))).astype(np.float32)
    ramp = min(160, len(samples) // 4)  # 10 ms fades: a cut mid-wave clicks, and a click sounds like a consonant
    if ramp:
        fade = np.sin(np.linspace(0, np.pi / 2, ramp, dtype=np.float32)) ** 2
        samples[:ramp] *= fade
        samples[-ramp:] *= fade[::-1]
    return samples


# -- what a design does to a voice ----------------------------------------------------------------
def stretch(samples: np.ndarray, factor: float) -> np.ndarray:
    """Time-stretched by `factor` (2: twice as long) at the same pitch, by overlap-adding 40 ms
    Hann-windowed grains taken at a hop of 10 ms / factor."""
    if abs(factor - 1.0) < 1e-3:
        return samples
    grain, hop = 640, 160
    window = np.hanning(grain).astype(np.float32)
    count = max(1, int(np.ceil((len(samples) * factor) / hop)))
    out = np.zeros(count * hop + grain, np.float32)
    norm = np.zeros_like(out)
    padded = np.pad(samples, (0, grain))
    for k in range(count):
        at = min(int(k * hop / factor), len(samples))
        out[k * hop : k * hop + grain] += padded[at : at + grain] * window
        norm[k * hop : k * hop + grain] += window
    return (out / np.maximum(norm, 1e-3))[: int(len(samples) * factor)]


def shift_pitch(samples: np.ndarray, semitones: float) -> np.ndarray:
    """Pitch moved by `semitones` at the same length: resampled, then stretched back."""
    if abs(semitones) < 0.05:
        return samples
    ratio = 2.0 ** (semitones / 12.0)
    positions = np.arange(0, len(samples) - 1, ratio)
    faster = np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
    return stretch(faster, len(samples) / max(1, len(faster)))


def reverberate(samples: np.ndarray, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A room: convolved with exponentially decaying noise lasting `seconds` (RT60), half wet."""
    if seconds <= 0:
        return samples
    from scipy.signal import fftconvolve

    n = int(seconds * SAMPLE_RATE)
    impulse = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * np.arange(n) / n).astype(np.float32)
    impulse[0] = 0.0
    wet = fftconvolve(samples, impulse / np.sqrt(np.sum(impulse**2)))[: len(samples)]
    return (0.5 * samples + 0.5 * wet).astype(np.float32)


def band_pass(samples: np.ndarray, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """Telephone quality: a 4th-order Butterworth band-pass (zero phase)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfiltfilt(sos, samples).astype(np.float32)


def noise(kind: str, length: int, rng: np.random.Generator, voices: list[str], chars: str) -> np.ndarray:
    """Background noise of unit RMS: `white`, `tones` (a few steady and warbling tones) or
    `babble` (other characters said by other voices, overlapping, as a crowd does)."""
    if kind == "white":
        out = rng.standard_normal(length).astype(np.float32)
    elif kind == "tones":
        t = np.arange(length, dtype=np.float32) / SAMPLE_RATE
        out = np.zeros(length, np.float32)
        for _ in range(int(rng.integers(2, 5))):
            f, wobble = rng.uniform(200, 3000), rng.uniform(0, 40)
            out += np.sin(2 * np.pi * (f * t + wobble * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t))).astype(np.float32)
    elif kind == "babble":
        out = np.zeros(length, np.float32)
        for _ in range(max(3, length // 4000)):
            said = clip(voices[int(rng.integers(len(voices)))], chars[int(rng.integers(len(chars)))])
            at = int(rng.integers(0, max(1, length - len(said) // 2)))
            part = said[: length - at]
            out[at : at + len(part)] += part
    else:
        raise CaptchalabError(f"noise {kind!r}: use white, babble or tones")
    rms = float(np.sqrt(np.mean(out**2)))
    return out / rms if rms > 0 else out


def at_snr(mixed: np.ndarray, background: np.ndarray, level: float, snr_db: float) -> np.ndarray:
    """Unit-RMS `background` added to `mixed` at `snr_db` under the speech's RMS `level` (taken
    over the characters alone, not the silence between them)."""
    return mixed + background * level / (10 ** (snr_db / 20.0))


def finished(samples: np.ndarray) -> np.ndarray:
    """Float samples scaled to a peak of 0.9 and written as int16."""
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    return to_int16(samples * (0.9 * 32767.0 / peak if peak > 0 else 0.0))


# -- a spoken challenge ---------------------------------------------------------------------------
NOISES = ("white", "babble", "tones")
PARAMS = (
    Param("voices", str, "all", help="who speaks: all, espeak, or voices joined by + (" + ", ".join(VOICES) + ")"),
    Param("noise", str, "mix", help="the background: white, babble (other speech), tones, or mix (one of them each)"),
    Param("snr", float, 30.0, -10.0, 60.0, "speech over the background in dB"),
    Param("reverb", float, 0.0, 0.0, 1.5, "a room's reverberation time (RT60) in seconds"),
    Param("gap", float, 0.4, -0.3, 1.5, "seconds between characters (below 0: they overlap)"),
    Param("stretch", float, 0.0, 0.0, 0.5, "each character's length varies within this share"),
    Param("pitch", float, 0.0, 0.0, 8.0, "each character's pitch moves within this many semitones"),
    Param("telephone", float, 0.0, 0.0, 1.0, "share of challenges band-passed to 300-3400 Hz"),
    Param("decoys", int, 0, 0, 8, "other characters said over the speech by another voice, softer"),
    Param("decoy_level", float, 6.0, 0.0, 30.0, "how much softer the decoys are, in dB"),
)


def check_spoken(p: dict) -> None:
    if p["noise"] not in (*NOISES, "mix"):
        raise CaptchalabError(f"noise={p['noise']!r}: use white, babble, tones or mix")
    voices = parse_voices(p["voices"])
    if p["decoys"] and len(voices) < 2:
        raise CaptchalabError("decoys are said by another voice: name at least two voices")
    check_voices(voices)


def say(text: str, chars: str, rng: np.random.Generator, p: dict) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """`text` said by one of the design's voices over its background, as PARAMS describe: int16
    samples and each character's span as a box (start, 0, end, 1) in samples. `chars`: what the
    babble and the decoys say."""
    voices = parse_voices(p["voices"])
    voice = voices[int(rng.integers(len(voices)))]
    pieces = [
        shift_pitch(
            stretch(clip(voice, c), 1.0 + rng.uniform(-p["stretch"], p["stretch"])),
            rng.uniform(-p["pitch"], p["pitch"]),
        )
        for c in text
    ]
    starts, at = [], int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
    for piece in pieces:
        starts.append(at)
        # the next begins after this one's gap, and never before a third of this one was heard
        at = max(at + len(piece) + int(p["gap"] * rng.uniform(0.7, 1.3) * SAMPLE_RATE), at + len(piece) // 3)
    length = max(s + len(piece) for s, piece in zip(starts, pieces)) + int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
    mixed = np.zeros(length, np.float32)
    for start, piece in zip(starts, pieces):
        mixed[start : start + len(piece)] += piece
    others = [v for v in voices if v != voice]
    for _ in range(p["decoys"]):  # said by another voice, softer, anywhere in the challenge
        said = clip(others[int(rng.integers(len(others)))], chars[int(rng.integers(len(chars)))])
        said = said[:length] * 10 ** (-p["decoy_level"] / 20.0)
        start = int(rng.integers(0, max(1, length - len(said))))
        mixed[start : start + len(said)] += said
    kind = NOISES[int(rng.integers(len(NOISES)))] if p["noise"] == "mix" else p["noise"]
    level = float(np.sqrt(np.mean(np.concatenate(pieces) ** 2)))
    mixed = at_snr(mixed, noise(kind, length, rng, voices, chars), level, p["snr"])
    mixed = reverberate(mixed, rng, p["reverb"])
    if rng.random() < p["telephone"]:
        mixed = band_pass(mixed)
    return finished(mixed), [(s, 0, min(s + len(piece), length), 1) for s, piece in zip(starts, pieces)]


def decoy_chars(text: str, charset: str) -> str:
    """What babble and decoys say: digits among digits, else the style's whole set (a decoy of
    another class than the answer's would give itself away)."""
    return DIGITS if text.isdigit() else charset


class Voiced:
    """What every spoken style shares (mix it into a `Generator` of kind "audio"): PARAMS, the
    checks, the manifest's resources and `render`; a style adds its name and its `at_strength`."""

    kind = "audio"
    params = PARAMS
    charset = RECORDED_CHARS
    max_length = 8

    def check(self, p):
        check_spoken(p)

    def resources(self, p):
        return voice_resources(parse_voices(p["voices"]))

    def render(self, text, rng, p):
        samples, spans = say(text, decoy_chars(text, self.charset), rng, p)
        return Rendered(samples, spans)
