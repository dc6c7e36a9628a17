import gzip

import numpy as np
import pytest

from captchalab.errors import CaptchalabError
from captchalab.data.mnist import IDX_NAMES, load_mnist, read_idx
from conftest import assert_one_line_error, run_cli, write_idx


def test_reads_gz_and_raw_idx(tmp_path, mnist_dir):
    data = load_mnist(mnist_dir)
    assert data.x_train.shape == (400, 28, 28) and data.y_train.shape == (400,)
    assert data.x_test.shape == (100, 28, 28)
    assert set(data.file_hashes) == {n + ".gz" for n in IDX_NAMES.values()}
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in IDX_NAMES.values():
        (raw / name).write_bytes(gzip.decompress((mnist_dir / f"{name}.gz").read_bytes()))
    again = load_mnist(raw)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_test, data.y_test)


def test_reads_npz(tmp_path, mnist_dir):
    data = load_mnist(mnist_dir)
    np.savez(tmp_path / "mnist.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    assert load_mnist(tmp_path / "mnist.npz").x_train.shape == (400, 28, 28)


def test_environment_variable_is_used(monkeypatch, mnist_dir):
    monkeypatch.setenv("CAPTCHALAB_MNIST", str(mnist_dir))
    assert load_mnist().source == str(mnist_dir)


def _corrupt_copy(tmp_path, mnist_dir, mutate):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in IDX_NAMES.values():
        (folder / f"{name}.gz").write_bytes((mnist_dir / f"{name}.gz").read_bytes())
    target = folder / "train-images-idx3-ubyte.gz"
    target.write_bytes(gzip.compress(mutate(gzip.decompress(target.read_bytes()))))
    return folder


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-100], "truncated"),
        (lambda b: (9999).to_bytes(4, "big") + b[4:], "wrong magic"),
        (lambda b: b[:5], "truncated"),
    ],
)
def test_corrupt_files_are_named(tmp_path, mnist_dir, mutate, message):
    folder = _corrupt_copy(tmp_path, mnist_dir, mutate)
    with pytest.raises(CaptchalabError, match=message) as err:
        load_mnist(folder)
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_label_out_of_range(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([1, 2, 12], np.uint8), 2049, compress=False)
    labels = read_idx(path, 2049)
    assert labels.max() == 12  # read_idx reads; the loader's validation rejects it:
    folder = tmp_path / "set"
    folder.mkdir()
    imgs = np.zeros((3, 28, 28), np.uint8)
    for name, arr, magic in [
        ("train-images-idx3-ubyte", imgs, 2051),
        ("train-labels-idx1-ubyte", labels, 2049),
        ("t10k-images-idx3-ubyte", imgs, 2051),
        ("t10k-labels-idx1-ubyte", labels, 2049),
    ]:
        write_idx(folder / name, arr, magic)
    with pytest.raises(CaptchalabError, match="outside 0..9"):
        load_mnist(folder)


def test_missing_data_says_how_to_supply_it(tmp_path):
    env = {"CAPTCHALAB_MNIST": str(tmp_path / "nowhere")}
    result = run_cli("train", "mnist", "--epochs", "1", env=env, cwd=tmp_path)
    assert_one_line_error(result, "CAPTCHALAB_MNIST")
    assert not (tmp_path / "models" / "mnist.keras").exists()
