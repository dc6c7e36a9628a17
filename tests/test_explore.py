"""`captchalab explore`: the JSON API with real models, bad input, and the page in a real
headless Chromium driven by Playwright (Debian's chromium; `.ci/run` installs it)."""

import os
import re
import shutil
import socket

import cv2
import numpy as np
import pytest

from captchalab.data.dataset import GenerationSpec, Source
from captchalab.explore.server import Explorer, create_app
from conftest import assert_one_line_error, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_path):
    from captchalab.attackers import TrainSettings, get_attacker
    from captchalab.train import train_attacker

    folder = tmp_path_factory.mktemp("explore")
    ctc = folder / "ctc.keras"
    train_attacker(
        get_attacker("ctc")("0123456789", {"filters": 8, "rnn_units": 16}),
        Source(spec=GenerationSpec("clean", 40, seed=1)),
        ctc,
        TrainSettings(epochs=1, seed=1),
        workers=0,
    )
    broken = folder / "broken.keras"
    broken.write_bytes(b"not a model")
    grid = folder / "grid.keras"
    train_attacker(
        get_attacker("tilecnn")(),
        Source(spec=GenerationSpec("grid3", 20, seed=1)),
        grid,
        TrainSettings(epochs=1, seed=1),
        workers=0,
    )
    slider = folder / "slider.keras"
    train_attacker(
        get_attacker("locator")(),
        Source(spec=GenerationSpec("slider", 20, seed=1)),
        slider,
        TrainSettings(epochs=1, seed=1),
        workers=0,
    )
    rotation = folder / "rotation.keras"
    train_attacker(
        get_attacker("rotnet")("", {"side": 32}),
        Source(spec=GenerationSpec("rotation", 20, seed=1)),
        rotation,
        TrainSettings(epochs=1, seed=1),
        workers=0,
    )
    click = folder / "click.keras"
    train_attacker(
        get_attacker("clicknet")(),
        Source(spec=GenerationSpec("iconclick", 20, seed=1)),
        click,
        TrainSettings(epochs=1, seed=1),
        workers=0,
    )
    sound = folder / "audio.keras"  # the recorded voice: no espeak-ng needed
    train_attacker(
        get_attacker("audioctc")("0123456789", {"seconds": 4.0, "filters": 8, "rnn_units": 16}),
        Source(spec=GenerationSpec("spoken", 20, min_length=3, max_length=3, seed=1, params={"voices": "recorded"})),
        sound,
        TrainSettings(epochs=1, seed=1),
        workers=0,
    )
    return tiny_model_path, ctc, broken, grid, slider, rotation, click, sound


@pytest.fixture(scope="module")
def client(models):
    from starlette.testclient import TestClient

    return TestClient(create_app(Explorer(list(models), upload_limit=200_000)))


def png(image) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def drawn_two() -> bytes:
    pad = np.full((280, 280), 255, np.uint8)
    cv2.putText(pad, "2", (70, 220), cv2.FONT_HERSHEY_SIMPLEX, 7, 0, 24)
    return png(pad)


def captcha_png(seed=3) -> bytes:
    return png(Source(spec=GenerationSpec("clean", 1, seed=seed)).sample(0).image)


def test_an_image_grid_with_each_tiles_probability_and_the_tile_networks_layers(client):
    sample = Source(spec=GenerationSpec("grid3", 1, seed=2)).sample(0)
    view = client.post(f"/api/captcha/m3?grid=3&prompt={sample.question['prompt']}", content=png(sample.image)).json()
    assert view["kind"] == "grid" and view["prompt"] == sample.question["prompt"] and len(view["tiles"]) == 9
    assert all(0 <= p <= 1 for p in view["tiles"]) and view["tile"]["index"] == int(np.argmax(view["tiles"]))
    assert list(view["tile"]["layers"])[0] == "block1_relu1" and view["tile"]["layers"]["block1_relu1"]["shape"] == [
        32,
        32,
        16,
    ]
    unknown = client.post("/api/captcha/m3?grid=3&prompt=unicorn", content=png(sample.image))
    assert unknown.status_code == 400 and "never learnt 'unicorn'" in unknown.json()["error"]
    drawn = client.get("/api/random/captcha?style=grid4&seed=3").json()
    assert drawn["question"]["grid"] == 4 and drawn["text"]


def test_a_generated_slider_read_with_the_gap_found_beside_the_truth(client):
    view = client.get("/api/challenge/m4?strength=0.3&seed=2").json()
    assert view["kind"] == "slider" and view["found"].isdigit() and view["truth"].isdigit()
    assert [shown["caption"] for shown in view["images"]] == ["the piece where it was put", "piece"]
    assert all(shown["image"].startswith("data:image/png") for shown in view["images"])
    assert list(view["layers"]) == ["conv1", "conv2", "conv3"]
    assert view["said"] == f"answers {view['found']} px (truth {view['truth']})" and isinstance(view["solved"], bool)
    assert client.get("/api/challenge/m4?style=grid3").status_code == 400
    upload = client.post("/api/captcha/m4", content=captcha_png())
    assert upload.status_code == 400 and "needs its piece" in upload.json()["error"]


def test_a_rotation_read_with_the_picture_turned_back(client):
    view = client.get("/api/challenge/m5?seed=4").json()
    assert view["kind"] == "rotation" and 0 <= int(view["found"]) < 360 and view["truth"].isdigit()
    assert view["images"][0]["caption"] == "turned back by the reader's answer" and "block1_relu" in view["layers"]
    assert view["images"][0]["image"].startswith("data:image/png")
    picture = Source(spec=GenerationSpec("rotation", 1, seed=6)).sample(0).image
    dropped = client.post("/api/captcha/m5", content=png(picture)).json()
    assert dropped["kind"] == "rotation" and dropped["truth"] is None and dropped["found"].isdigit()


def test_a_click_challenge_read_with_its_clicks_numbered_on_the_scene(client):
    view = client.get("/api/challenge/m6?strength=0.5&seed=3").json()
    assert view["kind"] == "click" and view["truth"].count(";") == 2
    assert view["images"][0]["caption"] == "the clicks in order" and view["images"][1]["caption"] == "strip"
    assert view["said"].startswith("clicks ") and "(targets " in view["said"] and isinstance(view["solved"], bool)
    assert {"det1", "det5"} <= set(view["layers"])  # the detector's maps, layer by layer


def test_an_audio_challenge_is_played_drawn_as_its_spectrogram_and_read_step_by_step(client):
    from captchalab.sound import wav_bytes

    view = client.get("/api/challenge/m7?strength=0.5&seed=3").json()
    assert view["kind"] == "audio" and view["sound"].startswith("data:audio/wav;base64,")
    assert view["image"].startswith("data:image/png") and view["said"].startswith("hears ")
    steps = view["steps"]  # one row per 80 ms step, blank first
    assert len(steps["probabilities"]) == 50 and len(steps["labels"]) == 11 and steps["labels"][0] == "blank"
    sample = Source(spec=GenerationSpec("spoken", 1, seed=4, params={"voices": "recorded"})).sample(0)
    heard = client.post("/api/captcha/m7", content=wav_bytes(sample.image)).json()
    assert heard["kind"] == "audio" and heard["truth"] is None and set(heard["found"]) <= set("0123456789")
    refused = client.post("/api/captcha/m7", content=captcha_png())
    assert refused.status_code == 400 and "not a usable sound" in refused.json()["error"]


def test_models_are_listed_with_the_broken_one_explained(client):
    info = client.get("/api/models").json()
    listed = {m["id"]: m for m in info["models"]}
    assert listed["m0"]["attacker"] == "segment" and listed["m0"]["character_layers"]
    assert listed["m1"]["attacker"] == "ctc" and not listed["m1"]["character_layers"]
    assert "not a loadable Keras model" in listed["m2"]["error"]
    assert "distorted" in info["styles"]
    response = client.post("/api/char/m2", content=drawn_two())
    assert response.status_code == 400 and "did not load" in response.json()["error"]


def test_a_drawn_character_through_every_layer(client):
    view = client.post("/api/char/m0", content=drawn_two()).json()
    shapes = {name: tuple(view["layers"][name]["shape"]) for name in view["layers"]}
    assert shapes == {
        "conv1": (24, 24, 20),
        "conv2": (20, 20, 20),
        "conv3": (16, 16, 50),
        "conv4": (12, 12, 50),
        "conv5": (8, 8, 50),
        "conv6": (4, 4, 50),
    }
    import base64

    assert len(base64.b64decode(view["layers"]["conv1"]["data"])) == 24 * 24 * 20
    assert len(view["probabilities"]) == 10 and view["charset"] == "0123456789"
    assert view["prediction"] in "0123456789" and view["forward_ms"] < 1000
    kernels = client.get("/api/kernels/m0").json()
    assert len(kernels["conv1"]["kernels"]) == 20 and len(kernels["conv3"]["kernels"][0]) == 5


def test_compare_two_inputs(client):
    import base64

    blank = np.full((200, 200), 255, np.uint8)
    cv2.putText(blank, "4", (40, 170), cv2.FONT_HERSHEY_SIMPLEX, 6, 0, 20)
    uri = lambda data: "data:image/png;base64," + base64.b64encode(data).decode()
    view = client.post("/api/compare/m0", json={"first": uri(drawn_two()), "second": uri(png(blank))}).json()
    assert view["layers"] == ["input", "conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2"]
    assert view["most_apart"] in view["layers"][1:-1]
    assert view["similarity"]["input"] < 0.99


def test_a_captcha_read_by_segment_and_ctc(client):
    data = captcha_png()
    seg = client.post("/api/captcha/m0", content=data).json()
    assert len(seg["boxes"]) == 4 and len(seg["crops"]) == 4 and len(seg["text"]) == 4
    ctc = client.post("/api/captcha/m1", content=data).json()
    assert len(ctc["steps"]["probabilities"]) == 32 and len(ctc["steps"]["labels"]) == 11
    assert ctc["steps"]["input"].startswith("data:image/png;base64,") and "boxes" not in ctc
    layers = client.post("/api/char/m1", content=drawn_two())
    assert layers.status_code == 400 and "ctc model" in layers.json()["error"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (b"", 400, "empty file"),
        (b"GIF89a garbage", 400, "not a usable image"),
        (b"<html>not an image</html>", 400, "not a usable image"),
        (b"\x89PNG" + b"0" * 300_000, 413, "limited to"),
    ],
)
def test_bad_uploads_get_a_message_and_a_4xx(client, body, status, fragment):
    for path in ("/api/char/m0", "/api/captcha/m0"):
        response = client.post(path, content=body)
        assert response.status_code == status and fragment in response.json()["error"]
    assert client.get("/api/models").status_code == 200  # still serving


def test_an_image_without_ink(client):
    response = client.post("/api/char/m0", content=png(np.full((100, 100), 255, np.uint8)))
    assert response.status_code == 400 and "no ink" in response.json()["error"]


def test_random_inputs(client, mnist_dir, monkeypatch):
    monkeypatch.setenv("CAPTCHALAB_MNIST", str(mnist_dir))
    digit = client.get("/api/random/char?seed=3").json()
    assert digit["image"].startswith("data:image/png") and "MNIST test #" in digit["label"]
    made = client.get("/api/random/captcha?style=noisy&strength=0.7&charset=0123456789&length=5&seed=2").json()
    assert len(made["text"]) == 5 and len(made["boxes"]) == 5
    bad = client.get("/api/random/captcha?style=nope")
    assert bad.status_code == 400 and "unknown style" in bad.json()["error"]
    assert client.get("/api/random/captcha?strength=7").status_code == 400


def test_port_in_use_is_one_line(tmp_path, tiny_model_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("explore", "--model", tiny_model_path, "--port", port)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


@pytest.fixture
def server(models, mnist_dir):
    from captchalab.serving import launch

    env = {**os.environ, "CAPTCHALAB_MNIST": str(mnist_dir)}
    process, url = launch(
        ["explore", "--model", models[0], "--model", models[1], "--model", models[3], "--model", models[4]],
        "api/models",
        env=env,
    )
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_page_in_a_real_browser(server, tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "captcha.png").write_bytes(captcha_png(seed=5))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        requested = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(server)
        page.wait_for_selector("#model option", state="attached")
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + 80, box["y"] + 60)
        page.mouse.down()
        for x, y in ((200, 60), (200, 140), (80, 220), (200, 220)):  # a 2, roughly
            page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
        page.mouse.up()
        page.wait_for_selector("#predicted")
        assert page.locator("#predicted").inner_text() in "0123456789"
        assert page.locator("#layers .layer").nth(0).locator("canvas").count() == 20  # conv1's maps
        page.locator("#layers .maps canvas").nth(3).hover()
        page.wait_for_selector("#zoom:not([hidden])")
        page.click("[data-tab=captcha]")
        page.set_input_files("#file", str(tmp_path / "captcha.png"))
        page.wait_for_selector("#text-m0")
        page.wait_for_selector(".ctc-steps")
        assert len(page.locator("#text-m0").inner_text().replace("\n", "")) == 4
        assert page.locator(".crops canvas").count() == 4
        page.locator(".crops figure").first.click()
        page.wait_for_selector("[data-tab=char].active")
        page.click("[data-tab=captcha]")  # an image grid: each tile's probability, the likeliest tile's layers
        page.select_option("#style", "grid3")
        page.click("#random-captcha")
        page.wait_for_function("document.querySelector('#captcha-truth').textContent.includes('asked for')")
        page.wait_for_selector(".reading .grid-tile")
        assert page.locator(".reading:has(.grid-tile) .layer").count() == 6  # tilecnn's six ReLU layers
        page.select_option("#style", "slider")  # a slider: the gap found beside the truth, and the locator's maps
        page.click("#random-captcha")
        page.wait_for_selector(".reading figure img.challenge")
        assert re.fullmatch(r"answers -?\d+ px \(truth \d+\)", page.locator(".reading .found").inner_text())
        assert page.locator(".reading figcaption").all_inner_texts() == [
            "the challenge",
            "the piece where it was put",
            "piece",
        ]
        assert page.locator(".reading:has(figure) .layer").count() == 3
        assert not errors, errors
        assert all(url.startswith(server) or url.startswith(("data:", "blob:")) for url in requested), requested
        browser.close()


def test_a_grid_reader_of_ones_own_tiles_draws_from_them(models, tmp_path):
    """A reader trained on a tile folder of one's own: the page draws random challenges from that
    folder (its model's JSON records the parameters the user set), with no character set."""
    import json
    from test_tiles import tile_folder

    folder = tile_folder(tmp_path / "tiles", classes=("bus", "car", "hydrant"), per_class=3)
    grid = models[3]
    mine = tmp_path / "mine.keras"
    mine.write_bytes(grid.read_bytes())
    info = json.loads(grid.with_suffix(".json").read_text())
    info["source"] = {**info["source"], "overrides": {"tiles": str(folder)}}
    mine.with_suffix(".json").write_text(json.dumps(info))
    explorer = Explorer([mine])
    assert explorer.describe()["models"][0]["example_style"] == "grid3"
    drawn = explorer.random_captcha("grid3", 0.5, "", 4, 3)
    assert drawn["question"]["prompt"] in ("bus", "car", "hydrant")
