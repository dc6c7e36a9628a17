"""Importers against hostile input: a corpus of broken, exotic and malicious files built here,
run through the real `attack --dataset`, plus property-based mutation of valid files.

Hypothesis runs a fixed, derandomized set of examples by default (CI); set
CAPTCHALAB_FUZZ_EXAMPLES=20000 for a longer local run.
"""

import io
import json
import os
import struct
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from captchalab.attackers.segmenter import cut_characters
from captchalab.data.dataset import read_dataset
from captchalab.data.images import ImageError, ImageLimits, decode_image
from captchalab.errors import CaptchalabError
from conftest import run_cli

EXAMPLES = int(os.environ.get("CAPTCHALAB_FUZZ_EXAMPLES", "2000"))


def captcha(text="4719", size=(160, 60)) -> Image.Image:
    """A plain dark-on-light CAPTCHA drawn with Pillow (independent of our generators)."""
    from PIL import ImageDraw, ImageFont
    from captchalab.render import font_paths

    im = Image.new("RGB", size, (250, 245, 235))
    ImageDraw.Draw(im).text((12, 6), text, font=ImageFont.truetype(font_paths()[0], 40), fill=(20, 30, 60))
    return im


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **kw)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(captcha(), "JPEG"))
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def valid_exotic() -> dict[str, bytes]:
    """Legitimate images in forms scraped CAPTCHAs come in: all must be read, none skipped."""
    base = captcha()
    grey16 = np.asarray(base.convert("L"), np.uint16) * 257
    rgba = Image.new("RGBA", base.size, (0, 0, 0, 0))  # dark ink on transparency
    from PIL import ImageDraw, ImageFont
    from captchalab.render import font_paths

    ImageDraw.Draw(rgba).text((12, 6), "4719", font=ImageFont.truetype(font_paths()[0], 40), fill=(0, 0, 0, 255))
    return {
        "colour.png": encode(base, "PNG"),
        "sixteen.png": cv2.imencode(".png", grey16)[1].tobytes(),
        "alpha.png": encode(rgba, "PNG"),
        "palette.png": encode(base.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG"),
        "grey.jpg": encode(base.convert("L"), "JPEG", quality=70),
        "anim.gif": encode(base.convert("P"), "GIF"),
        "old.bmp": encode(base, "BMP"),
        "scan.tiff": encode(base, "TIFF"),
        "web.webp": encode(base, "WEBP"),
    }


def hostile() -> dict[str, bytes]:
    """Files that must be skipped and named, never fatal."""
    png, jpg = encode(captcha(), "PNG"), encode(captcha(), "JPEG")
    files = {
        "empty.png": b"",
        "text.png": b"just some text, not an image\n",
        "badmagic.png": b"\x89PNX" + png[5:],
        "bomb.png": png_claiming(100_000, 100_000),
        "wide.png": png_claiming(40_000, 10),
        "bomb.jpg": jpeg_claiming(65_000, 65_000),
        "zeros.png": png_claiming(0, 0),
    }
    for cut in (8, 16, 33, 60, len(png) // 3, len(png) // 2, len(png) - 20):
        files[f"cut{cut}.png"] = png[:cut]
    for cut in (2, 20, 200, len(jpg) // 2):
        files[f"cut{cut}.jpg"] = jpg[:cut]
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A dataset folder holding every case, with a labels.csv that itself has a BOM, CRLF line
    ends, an extra column, a non-UTF-8 row and rows for a directory and a symlink loop."""
    folder = tmp_path_factory.mktemp("fuzz") / "scraped"
    folder.mkdir()
    good, bad = valid_exotic(), hostile()
    for name, data in {**good, **bad}.items():
        (folder / name).write_bytes(data)
    (folder / "folder.png").mkdir()
    os.symlink("loop-b.png", folder / "loop-a.png")
    os.symlink("loop-a.png", folder / "loop-b.png")
    rows = [f"{name},4719,scraped" for name in [*good, *bad, "folder.png", "loop-a.png", "missing.png"]]
    text = "\ufefffilename,text,source\r\n" + "\r\n".join(rows) + "\r\n"
    raw = text.encode("utf-8") + b"caf\xe9.png,4719,latin-1 row\r\n"
    (folder / "labels.csv").write_bytes(raw)
    bad_names = [*bad, "folder.png", "loop-a.png", "missing.png"]
    return folder, list(good), bad_names


def test_attack_survives_the_corpus_and_names_every_bad_file(tmp_path, corpus, tiny_model_path):
    folder, good, bad = corpus
    before = {p for p in tmp_path.parent.rglob("*")}
    out = tmp_path / "report"
    result = run_cli("attack", "--model", tiny_model_path, "--dataset", folder, "--workers", "0", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert sorted(report["skipped_files"]) == sorted(bad)
    assert report["count"] == len(good)  # exotic but valid formats are read, not skipped
    assert all(report["skipped_reasons"][name] for name in bad)
    assert report["skipped_reasons"]["bomb.png"].startswith("100000 x 100000 pixels")
    assert [why for _, why in report["rejected_rows"]] == [f"line {len(good) + len(bad) + 2}: not UTF-8"]
    md = (out / "report.md").read_text()
    assert all(f"`{name}`" in md for name in bad)
    after = {p for p in tmp_path.parent.rglob("*")}
    assert {p for p in after - before if not p.is_relative_to(out)} == set()  # nothing outside --out


def test_valid_exotic_formats_decode_to_bgr(corpus):
    folder, good, _ = corpus
    for name in good:
        image = decode_image((folder / name).read_bytes())
        assert image.dtype == np.uint8 and image.shape == (60, 160, 3), name
        assert image[0, 0].min() > 200 and image.min() < 80, name  # light background, dark ink


def test_limits_are_configurable(monkeypatch):
    data = encode(captcha(size=(300, 100)), "PNG")
    monkeypatch.setenv("CAPTCHALAB_MAX_IMAGE_SIDE", "200")
    with pytest.raises(ImageError, match="outside the limit of 200 x 200"):
        decode_image(data)
    with pytest.raises(ImageError, match="above the limit"):
        decode_image(data, ImageLimits(max_side=4000, max_bytes=100))
    monkeypatch.setenv("CAPTCHALAB_MAX_IMAGE_SIDE", "lots")
    with pytest.raises(CaptchalabError, match="must be numbers"):
        decode_image(data)


def _peak_rss_kb(args, tmp_path, name) -> int:
    """Peak memory of one `captchalab` run in a fresh process (all work in that process)."""
    report = tmp_path / f"{name}.rss"
    code = (
        "import resource, runpy, sys\n"
        f"sys.argv = ['captchalab', *{[str(a) for a in args]!r}]\n"
        "try:\n    runpy.run_module('captchalab', run_name='__main__')\n"
        f"finally:\n    open({str(report)!r}, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(report.read_text())


def test_a_dimension_bomb_costs_almost_no_memory(tmp_path, tiny_model_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    rows = []
    for i in range(20):
        (folder / f"{i}.png").write_bytes(encode(captcha(f"{i:04d}"), "PNG"))
        rows.append(f"{i}.png,{i:04d}")
    (folder / "labels.csv").write_text("filename,text\n" + "\n".join(rows) + "\n")
    args = ["attack", "--model", tiny_model_path, "--dataset", folder, "--workers", "0"]
    plain = _peak_rss_kb(args + ["--out", tmp_path / "a"], tmp_path, "plain")
    for name, data in (("bomb.png", png_claiming(30_000, 30_000)), ("huge.jpg", jpeg_claiming(20_000, 20_000))):
        (folder / name).write_bytes(data)
        rows.append(f"{name},1234")
    (folder / "labels.csv").write_text("filename,text\n" + "\n".join(rows) + "\n")
    bombed = _peak_rss_kb(args + ["--out", tmp_path / "b"], tmp_path, "bombed")
    assert json.loads((tmp_path / "b" / "report.json").read_text())["skipped"] == 2
    assert bombed - plain < 100 * 1024, (plain, bombed)  # kB: under 100 MB more


SEEDS = [
    encode(captcha(), "PNG"),
    encode(captcha(), "JPEG", quality=60),
    encode(captcha().convert("P"), "GIF"),
    encode(captcha(), "BMP"),
]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "header" and len(data) > 24:  # scribble over the dimensions region
            data[16:24] = draw(st.binary(min_size=8, max_size=8))
    return bytes(data)


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_mutated_images_never_escape_as_exceptions(data):
    try:
        image = decode_image(data)
    except ImageError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    seg = cut_characters(image, 4)  # whatever decodes must also survive the segmenter
    assert seg.crops.dtype == np.uint8 and len(seg.crops) == len(seg.boxes)


@settings(
    max_examples=max(200, EXAMPLES // 5),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.binary(max_size=400), st.sampled_from([b"", b"\xef\xbb\xbf"]), st.sampled_from([b"\n", b"\r\n"]))
def test_mutated_labels_files_are_read_or_refused_in_one_line(tmp_path_factory, body, bom, newline):
    folder = tmp_path_factory.mktemp("labels")
    (folder / "a.png").write_bytes(SEEDS[0])
    raw = bom + b"filename,text" + newline + body.replace(b"\n", newline) + newline + b"a.png,1234" + newline
    (folder / "labels.csv").write_bytes(raw)
    try:
        data = read_dataset(folder)
    except CaptchalabError as exc:
        assert "\n" not in str(exc)
        return
    lines = [line for line in raw.split(b"\n")[1:] if line.strip(b" \r\t")]
    assert len(data) + len(data.rejected) <= len(lines)
    assert "a.png" in data.filenames
    for name in data.filenames:
        assert (folder / name).resolve().is_relative_to(folder.resolve())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=max(100, EXAMPLES // 10), derandomize=True, deadline=None)
@given(
    st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=12),
    st.sampled_from([None, 0, 2]),
    st.integers(1, 40),
    st.integers(0, 60),
    st.binary(max_size=3),
)
def test_side_files_read_piece_by_piece_as_json_reads_them_whole(drawn, indent, chunk, cut, scribble):
    """boxes.json and challenges.json are read a chunk at a time (a million challenges' worth is
    never parsed at once): whatever the formatting or where a chunk ends, the same entries as
    json.loads, and a broken file is ignored (None), as a broken hint always was."""
    from captchalab.data.folders import _object_entries

    text = json.dumps(drawn, indent=indent)
    assert {k: json.loads(v) for k, v in _object_entries(io.StringIO(text), chunk)} == drawn
    broken = (text[:cut] + scribble.decode("latin-1") + text[cut:]).encode()  # may still be valid JSON
    try:
        whole = json.loads(broken)
    except ValueError:
        whole = None
    try:
        pieces = {k: json.loads(v) for k, v in _object_entries(io.StringIO(broken.decode()), chunk)}
    except ValueError:
        pieces = None
    assert pieces == (whole if isinstance(whole, dict) else None)


def test_a_hundred_thousand_rows_are_held_packed(tmp_path):
    """A dataset's rows are read a line at a time and kept packed (a million-CAPTCHA folder is not a
    million strings per column): 100,000 rows cost a fifth of what lists of strings did, and read
    back as the same strings."""
    import pickle
    import tracemalloc

    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "labels.csv").write_text(
        "filename,text\n" + "".join(f"img{i}.png,{i % 10000:04d}\n" for i in range(100_000))
    )
    start = time.perf_counter()
    tracemalloc.start()
    data = read_dataset(folder, "0123456789")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(data) == 100_000 and not data.rejected
    assert time.perf_counter() - start < 20
    assert peak < 10 * 2**20, peak  # measured: 4.8 MB; as split lines and lists of strings, 23.9 MB
    assert data.filenames[0] == "img0.png" and data.filenames[-1] == "img99999.png" and data.texts[12345] == "2345"
    assert data.filenames[3:5] == ["img3.png", "img4.png"] and list(data.texts[-2:]) == ["9998", "9999"]
    assert list(data.filenames) == [f"img{i}.png" for i in range(100_000)]
    assert pickle.loads(pickle.dumps(data.texts)) == data.texts
    with pytest.raises(IndexError):
        data.filenames[100_000]


def test_bad_labels_headers_are_one_line_errors(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    for raw in (b"", b"\xff\xfe\x00\x00", b"name,label\nx.png,1\n", b"\n\n\n"):
        (folder / "labels.csv").write_bytes(raw)
        with pytest.raises(CaptchalabError, match="header must name the columns filename,text"):
            read_dataset(folder)


def test_visualize_a_hostile_image_is_one_line(tmp_path, tiny_model_path):
    (tmp_path / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    result = run_cli("visualize", "--model", tiny_model_path, "--image", tmp_path / "bomb.png", "--out", tmp_path / "v")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot read image {tmp_path / 'bomb.png'}: 100000 x 100000 pixels, outside the limit of 4000 x 4000"
    ]
    assert not (tmp_path / "v").exists()
