"""Audio CAPTCHAs through the same house: the one WAV decoder on every format a site or a user
hands us and on hostile files, challenges byte-identical with any worker count, pocketsphinx off
the shelf and the trained reader end to end (train, attack, sweep), and bad input as one-line
errors."""

import importlib.util
import json
import shutil
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_cli
from captchalab.sound import SAMPLE_RATE, AudioError, decode_wav, wav_bytes

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
needs_pocketsphinx = pytest.mark.skipif(
    importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx is not installed (the audio extra)"
)


def wav(samples: np.ndarray, rate: int, tag: int = 1, bits: int = 16, channels: int = 1, data_size=None) -> bytes:
    """A WAV file written by hand, so every field can be what a test wants (even wrong)."""
    if bits == 24:
        as32 = samples.astype("<i4").reshape(-1)
        body = b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in as32)
    else:
        body = samples.tobytes()
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    size = len(body) if data_size is None else data_size
    return b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + \
        b"data" + struct.pack("<I", size) + body  # fmt: skip


def tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)


@pytest.mark.parametrize(
    "name, data",
    [
        ("16-bit mono 16 kHz", wav((tone(16000) * 20000).astype("<i2"), 16000)),
        ("8-bit unsigned 8 kHz", wav((tone(8000) * 100 + 128).astype(np.uint8), 8000, bits=8)),
        ("24-bit 48 kHz", wav(tone(48000) * 2**22, 48000, bits=24)),
        ("32-bit PCM 44.1 kHz", wav((tone(44100) * 2**30).astype("<i4"), 44100, bits=32)),
        ("float32 22.05 kHz", wav((tone(22050) * 0.6).astype("<f4"), 22050, tag=3, bits=32)),
        (
            "float64 stereo 32 kHz",
            wav(np.repeat(tone(32000) * 0.6, 2).astype("<f8"), 32000, tag=3, bits=64, channels=2),
        ),
    ],
)
def test_every_common_wav_decodes_to_16_khz_mono_int16(name, data):
    samples = decode_wav(data)
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert abs(len(samples) - SAMPLE_RATE // 2) <= 2, name  # half a second, whatever the rate
    # still the 440 Hz tone: its strongest frequency after resampling
    peak = np.argmax(np.abs(np.fft.rfft(samples.astype(float)))) * SAMPLE_RATE / len(samples)
    assert abs(peak - 440) < 5, (name, peak)
    assert np.abs(samples).max() > 5000, name  # not silenced by a wrong scale


@pytest.mark.parametrize(
    "data, why",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a WAV"),
        (wav(np.zeros(10, "<i2"), 16000)[:16], "no format chunk"),
        (wav(np.zeros(10, "<i2"), 16000)[:30], "claims 16 bytes"),  # a torn header
        (wav(np.zeros(100, "<i2"), 16000, data_size=10**6), "claims"),  # a header that misstates the length
        (wav(np.zeros(100, "<i2"), 16000, tag=2), "format tag 2"),  # ADPCM
        (wav(np.zeros(100, "<i2"), 16000, channels=0), "0 channels"),
        (wav(np.zeros(100, "<i2"), 100), "sample rate 100"),
        (wav(np.zeros(100, "<i2"), 16000, bits=12), "12-bit"),
        (wav(np.zeros(31 * 16000, "<i2"), 16000), "above the limit"),  # too long: refused before converting
    ],
)
def test_hostile_wavs_are_one_line_refusals(data, why):
    with pytest.raises(AudioError, match=why) as caught:
        decode_wav(data)
    assert "\n" not in str(caught.value)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_wavs_never_escape_as_other_exceptions(data):
    clean = bytearray(wav((tone(22050, 0.1) * 9000).astype("<i2"), 22050))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(clean) - 1))
        clean[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(clean)))
    try:
        samples = decode_wav(bytes(clean[:cut]))
    except AudioError:
        return
    assert samples.dtype == np.int16 and samples.ndim == 1 and len(samples) > 0


def test_our_own_wav_files_read_back_sample_for_sample():
    samples = (tone(SAMPLE_RATE) * 12000).astype(np.int16)
    assert np.array_equal(decode_wav(wav_bytes(samples)), samples)


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "manifest.json"}


@needs_espeak
def test_audio_challenges_are_byte_identical_with_any_worker_count(tmp_path):
    style = "continuous"  # spoken's path and more: decoys in another voice, babble
    folders = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        done = run_cli("generate", "--style", style, "--strength", 0.5, "--length", 5, "--count", 6, "--seed", 4,
                       "--workers", workers, "--out", out)  # fmt: skip
        assert done.returncode == 0, done.stderr
        folders.append(out)
    assert files_of(folders[0]) == files_of(folders[1])
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["captcha_kind"] == "audio" and manifest["resources"]["espeak_ng"]
    assert len(manifest["resources"]["recorded_voice_sha256"]) == 64
    spans = json.loads((folders[0] / "boxes.json").read_text())["00000.wav"]
    samples = decode_wav((folders[0] / "00000.wav").read_bytes())
    assert len(spans) == 5 and all(0 <= s[0] < s[2] <= len(samples) for s in spans)  # each character's time span
    refused = run_cli("generate", "--style", style, "--adversarial-against", folders[0] / "none.keras", "--count", 2,
                      "--out", tmp_path / "perturbed")  # fmt: skip
    assert_one_line_error(refused, "perturbs pixels")


@needs_pocketsphinx
def test_pocketsphinx_hears_the_recorded_voice_off_the_shelf(tmp_path):
    """The recorded voice needs no espeak-ng: pocketsphinx, held to the digits' names by its
    grammar, hears most of its characters at strength 0 (a misread sheet shows what it heard)."""
    data, out = tmp_path / "data", tmp_path / "attack"
    made = run_cli("generate", "--style", "spoken", "--strength", 0, "--param", "voices=recorded", "--length", 4,
                   "--count", 12, "--seed", 1, "--out", data)  # fmt: skip
    assert made.returncode == 0, made.stderr
    done = run_cli("attack", "--dataset", data, "--attacker", "pocketsphinx", "--out", out)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "audio" and report["count"] == 12
    assert report["char_accuracy"] > 0.6, report["char_accuracy"]
    if report["captcha_accuracy"] < 1:
        assert (out / "misread-pocketsphinx.png").is_file()


@needs_espeak
@needs_pocketsphinx
def test_audioctc_trains_attacks_and_sweeps_end_to_end(tmp_path):
    model = tmp_path / "reader.keras"
    trained = run_cli("train", "captcha", "--attacker", "audioctc", "--style", "spoken", "--strength", 0,
                      "--length", 3, "--count", 40, "--budget", 200, "--hparam", "seconds=4",
                      "--out", model, timeout=600)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    info = json.loads(model.with_suffix(".json").read_text())
    assert info["attacker"] == "audioctc" and info["kind"] == "audio" and info["input"]["frames"] == 400
    swept = run_cli("sweep", "--model", model, "--attacker", "pocketsphinx", "--style", "spoken", "--length", 3,
                    "--strength", "0:1:2", "--count", 4, "--out", tmp_path / "sweep")  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    report = json.loads((tmp_path / "sweep" / "report.json").read_text())
    assert [s["value"] for s in report["steps"]] == [0.0, 1.0]
    assert {"reader (audioctc)", "pocketsphinx"} <= set(report["steps"][0]["per_attacker"])
    assert (tmp_path / "sweep" / "steps" / "step-00.png").is_file()  # the challenges drawn as spectrograms


@needs_pocketsphinx
def test_bad_audio_input_is_one_line(tmp_path):
    assert_one_line_error(
        run_cli("generate", "--style", "spoken", "--param", "voices=robot", "--count", 2, "--out", tmp_path / "a"),
        "voice 'robot'",
    )
    assert not (tmp_path / "a").exists()
    assert_one_line_error(
        run_cli("generate", "--style", "spoken", "--charset", "abc!", "--count", 2, "--out", tmp_path / "b"),
    )
    # espeak-ng missing: named in one line, and the recorded voice still works
    env = {"PATH": str(tmp_path / "empty")}
    assert_one_line_error(
        run_cli(
            "generate", "--style", "spoken", "--param", "voices=espeak", "--count", 2, "--out", tmp_path / "c", env=env
        ),  # fmt: skip
        "espeak-ng is not installed",
    )
    # a folder of WAV files, some broken: read as audio, the broken ones skipped and named
    folder = tmp_path / "scraped"
    folder.mkdir()
    (folder / "good.wav").write_bytes(wav_bytes((tone(SAMPLE_RATE) * 9000).astype(np.int16)))
    (folder / "stereo.wav").write_bytes(wav(np.repeat(tone(8000) * 9000, 2).astype("<i2"), 8000, channels=2))
    (folder / "lies.wav").write_bytes(wav(np.zeros(100, "<i2"), 16000, data_size=10**6))
    (folder / "photo.wav").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    (folder / "labels.csv").write_text("filename,text\ngood.wav,12\nstereo.wav,34\nlies.wav,56\nphoto.wav,78\n")
    done = run_cli("attack", "--dataset", folder, "--attacker", "pocketsphinx", "--out", tmp_path / "r")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["kind"] == "audio" and report["count"] == 2 and report["skipped"] == 2
    assert "lies.wav" in json.dumps(report["skipped_files"]) and "photo.wav" in json.dumps(report["skipped_files"])
