import cv2
import numpy as np
import pytest

from captchalab import render
from captchalab.data.dataset import GenerationSpec, render_many
from captchalab.score import box_hit
from captchalab.attackers.segmenter import cut_characters, mnist_crop


@pytest.fixture(autouse=True)
def mnist_env(monkeypatch, mnist_dir):
    monkeypatch.setenv("CAPTCHALAB_MNIST", str(mnist_dir))


def box_rate(style, strength=0.5, n=25, degrade=None):
    hits = 0
    for _, (text, image, boxes, *_) in render_many(GenerationSpec(style, n, 4, 4, seed=9, strength=strength)):
        if degrade:
            image, boxes = degrade(image, boxes)
        seg = cut_characters(image, len(text))
        hits += len(seg.boxes) == len(text) and all(box_hit(f, t) for f, t in zip(seg.boxes, boxes))
    return hits / n


# measured rates are well above these floors; the floors catch a broken segmenter
@pytest.mark.parametrize(
    "style, floor",
    [("clean", 1.0), ("distorted", 0.9), ("noisy", 0.8), ("handwritten", 0.7), ("imagecaptcha", 0.8), ("overlap", 0.4)],
)
def test_segments_generated_captchas_where_the_generator_drew_them(style, floor):
    assert box_rate(style) >= floor


def jpeg(image, boxes, quality=30):
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR), boxes


def blur(image, boxes):
    return cv2.GaussianBlur(image, (3, 3), 0), boxes


def enlarge(image, boxes):
    return cv2.resize(image, None, fx=2.5, fy=2.5), [tuple(int(v * 2.5) for v in b) for b in boxes]


def shrink(image, boxes):
    return cv2.resize(image, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA), [
        tuple(int(v * 0.6) for v in b) for b in boxes
    ]


def tint_and_lines(image, boxes):
    out = (image.astype(np.int16) + np.array([0, 60, -40])).clip(0, 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    render.interference_lines(out, rng, 3, (30, 30, 30), 1)
    return out, boxes


def grey(image, boxes):
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), boxes


@pytest.mark.parametrize("degrade", [jpeg, blur, enlarge, shrink, tint_and_lines, grey])
def test_survives_degraded_images(degrade):
    assert box_rate("clean", 0.5, 20, degrade) >= 0.9


def test_splits_touching_characters_when_the_length_is_known():
    masks = [render.glyph(c, 1, 44) for c in "4708"]
    out = render.compose(masks, [(0, 0, 0)] * 4, np.random.default_rng(0), 64, render.plain(255), advance=0.9)
    seg = cut_characters(out.image, 4)
    assert len(seg.crops) == 4
    assert all(box_hit(f, t) for f, t in zip(seg.boxes, out.boxes))


def test_without_hint_counts_separated_characters():
    masks = [render.glyph(c, 0, 44) for c in "50917"]
    out = render.compose(masks, [(0, 0, 0)] * 5, np.random.default_rng(0), 64, render.plain(255), advance=1.4)
    assert len(cut_characters(out.image).crops) == 5


def test_normalisation_is_mnist_like():
    mask = np.zeros((80, 30), bool)
    mask[5:75, 10:20] = True  # a tall bar, off-centre in its frame
    crop = mnist_crop(mask)
    assert crop.shape == (28, 28) and crop.dtype == np.uint8
    ys, xs = np.nonzero(crop > 0)
    assert ys.max() - ys.min() + 1 <= 21 and ys.max() - ys.min() + 1 >= 19  # fitted into 20 px
    m = cv2.moments(crop)
    assert abs(m["m10"] / m["m00"] - 14) < 0.6 and abs(m["m01"] / m["m00"] - 14) < 0.6
    assert crop[0, 0] == 0 and crop.max() == 255  # white on black


def test_dark_background_image_gives_white_on_black_crops():
    masks = [render.glyph(c, 0, 44) for c in "31"]
    out = render.compose(masks, [(255, 255, 255)] * 2, np.random.default_rng(0), 64, render.plain(0))
    seg = cut_characters(out.image, 2)
    assert len(seg.crops) == 2 and all(c[0, 0] == 0 and c.max() > 200 for c in seg.crops)


def test_frame_and_free_lines_are_ignored():
    masks = [render.glyph(c, 0, 44) for c in "6183"]
    out = render.compose(masks, [(0, 0, 0)] * 4, np.random.default_rng(0), 64, render.plain(255), advance=1.4)
    image = out.image
    h, w = image.shape[:2]
    cv2.rectangle(image, (0, 0), (w - 1, h - 1), (0, 0, 0), 2)  # a dark frame around the CAPTCHA
    cv2.line(image, (0, 2), (w - 1, 6), (0, 0, 0), 1)  # a line across the top, touching no digit
    for expected in (4, None):
        seg = cut_characters(image, expected)
        assert len(seg.crops) == 4
        assert all(box_hit(f, t) for f, t in zip(seg.boxes, out.boxes))
        assert all(c[0, 0] == 0 for c in seg.crops)
