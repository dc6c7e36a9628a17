"""Look inside the network: every feature map, the fc1 activations, the outputs, the kernels,
and two inputs compared layer by layer.

`activations(model, image)` gives the numbers; the `render_*` functions draw them with
matplotlib (Agg); `render_all` writes a folder with PNGs and an index.html that walks down the
network from input to output.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np

from .attackers.base import load_attacker
from .attackers.segmenter import cut_characters, ink_mask, mnist_crop
from .charset import DIGITS
from .data.images import read_image_or_fail
from .errors import CaptchalabError
from .model import CONV_LAYERS
from .plots import pyplot

LAYERS = ("input",) + CONV_LAYERS + ("fc1", "fc2")
DPI = 100


def load_network(path) -> tuple:
    """The seed's network of a `segment` model (MNIST, characters or a CAPTCHA attacker) and its
    character set in output order."""
    attacker = load_attacker(path)
    if "layers" not in attacker.views:
        raise CaptchalabError(
            f"{path} is a {attacker.name!r} model; visualize draws the seed's network "
            "(a segment model); `captchalab explore` also shows ctc models"
        )
    return attacker.model, attacker.charset


def visual_input(data, index: int | None, image, char: int | None, index_flag: str = "--mnist-index"):
    """(28x28 image, label, name) from an MNIST test index or from an image file (one character,
    or with `char` that character of a whole CAPTCHA)."""
    if index is not None:
        from .data.mnist import load_mnist

        mnist = load_mnist(data)
        if not 0 <= index < len(mnist.x_test):
            raise CaptchalabError(
                f"{index_flag} {index} is out of range: the MNIST test set has "
                f"{len(mnist.x_test)} images (0..{len(mnist.x_test) - 1})"
            )
        return mnist.x_test[index], f"mnist #{index} (label {int(mnist.y_test[index])})", f"mnist-{index}"
    picture = read_image_or_fail(image)
    label = image.name + (f" char {char}" if char is not None else "")
    return prepare_image(picture, char), label, image.stem + (f"-char{char}" if char is not None else "")


def prepare_image(image: np.ndarray, char: int | None = None) -> np.ndarray:
    """A 28x28 white-on-black uint8 character from any image: a 28x28 image is kept (inverted if
    it is dark on light), a CAPTCHA with `char` gives its char-th segmented character, anything
    else is treated as one character and normalised the MNIST way."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if char is not None:
        crops = cut_characters(image).crops
        if not 0 <= char < len(crops):
            raise CaptchalabError(f"`char` {char} is out of range: the image segments into {len(crops)} characters")
        return crops[char]
    if gray.shape == (28, 28):
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        return 255 - gray if border.mean() > 127 else gray.copy()
    return mnist_crop(ink_mask(gray) > 0)


def activation_function(model):
    """A compiled pass returning every layer's output, made once per model and kept on it."""
    run = getattr(model, "_captchalab_activations", None)
    if run is None:
        import keras
        import tensorflow as tf

        extractor = keras.Model(model.input, [model.get_layer(n).output for n in LAYERS[1:]])
        run = tf.function(
            lambda x: extractor(x, training=False), input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)]
        )
        object.__setattr__(model, "_captchalab_activations", run)  # not a tracked Keras attribute
    return run


def activations(model, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output for one 28x28 uint8 image: conv maps (H, W, C), fc1 (500,), fc2 (N,)."""
    x = (image.astype(np.float32) / 255.0)[None, ..., None]
    outputs = activation_function(model)(x)
    acts = {"input": image.astype(np.float32) / 255.0}
    acts.update({name: np.asarray(out)[0] for name, out in zip(LAYERS[1:], outputs)})
    return acts


def mosaic(maps: np.ndarray, columns: int, pad: int = 1) -> np.ndarray:
    """Tile (H, W, C) maps into one 2-D array, NaN between tiles (drawn as the background)."""
    h, w, c = maps.shape
    rows = int(np.ceil(c / columns))
    out = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad), np.nan, np.float32)
    for k in range(c):
        r, col = divmod(k, columns)
        out[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = maps[..., k]
    return out


def _grid_columns(channels: int) -> int:
    return 1 if channels == 1 else 5 if channels <= 20 else 10


def _draw_maps(ax, maps, vmin, vmax, cmap, label_tiles=True, dead_mark=True):
    h, w, c = maps.shape
    cols = _grid_columns(c)
    import matplotlib

    cmap = matplotlib.colormaps[cmap].with_extremes(bad="#d8d8d8")  # grey gaps between tiles
    im = ax.imshow(np.ma.masked_invalid(mosaic(maps, cols)), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if label_tiles:
        for k in range(c):
            r, col = divmod(k, cols)
            dead = dead_mark and not np.any(maps[..., k] > 0)
            ax.text(
                col * (w + 1),
                r * (h + 1) - 0.3,
                f"{k}{' dead' if dead else ''}",
                fontsize=6,
                color="red" if dead else "black",
                va="bottom",
            )
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def render_input(image: np.ndarray, path: Path, title: str = "input (28x28)") -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3, 3.2), dpi=DPI)
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def render_conv(name: str, maps: np.ndarray, path: Path) -> None:
    """All feature maps of one conv layer on one colour scale; dead (all-zero) maps marked."""
    plt = pyplot()
    h, w, c = maps.shape
    cols = _grid_columns(c)
    rows = int(np.ceil(c / cols))
    fig, ax = plt.subplots(figsize=(1.0 * cols + 1.6, 1.0 * rows + 0.8), dpi=DPI)
    vmax = float(maps.max()) or 1.0
    im = _draw_maps(ax, maps, 0.0, vmax, "magma")
    dead = int(np.sum(~np.any(maps > 0, axis=(0, 1))))
    ax.set_title(f"{name}: {c} feature maps of {h}x{w} after ReLU ({dead} silent for this input)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, label="activation")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def render_fc1(vector: np.ndarray, path: Path, title: str = "fc1: 500 activations as a 20x25 grid") -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.6), dpi=DPI)
    im = ax.imshow(
        vector.reshape(20, 25), cmap="magma", vmin=0, vmax=float(vector.max()) or 1.0, interpolation="nearest"
    )
    ax.set_title(f"{title} ({int(np.sum(vector <= 0))} silent)", fontsize=9)
    ax.set_xlabel("unit index mod 25")
    ax.set_ylabel("unit index // 25")
    fig.colorbar(im, ax=ax, fraction=0.04, label="activation")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def render_fc2(probs: np.ndarray, path: Path, title: str = "fc2: class probabilities", charset: str = DIGITS) -> None:
    plt = pyplot()
    n = len(probs)
    fig, ax = plt.subplots(figsize=(max(5, 0.16 * n + 2), 3), dpi=DPI)
    pred = int(np.argmax(probs))
    colors = ["#d62728" if k == pred else "#1f77b4" for k in range(n)]
    ax.bar(range(n), probs, color=colors)
    ax.set_xticks(range(n))
    ax.set_xticklabels(list(charset), fontsize=8 if n <= 36 else 6)
    ax.set_xlabel("character")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{title}; predicted {charset[pred]!r} ({probs[pred]:.1%})", fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def render_kernels(model, path_conv1: Path, path_deep: Path) -> None:
    """conv1's 20 5x5 filters, and for conv2..conv6 the L2 norm of every (output, input) kernel."""
    plt = pyplot()
    k1 = model.get_layer("conv1").kernel.numpy()[:, :, 0, :]  # (5, 5, 20)
    lim = float(np.abs(k1).max()) or 1.0
    fig, ax = plt.subplots(figsize=(6, 3), dpi=DPI)
    im = _draw_maps(ax, k1, -lim, lim, "RdBu_r", dead_mark=False)
    ax.set_title("conv1 kernels: 20 filters of 5x5 (red excites, blue inhibits)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, label="weight")
    fig.savefig(path_conv1, bbox_inches="tight")
    plt.close(fig)
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.6), dpi=DPI)
    for ax, name in zip(axes, CONV_LAYERS[1:]):
        k = model.get_layer(name).kernel.numpy()  # (5, 5, in, out)
        norms = np.sqrt((k**2).sum(axis=(0, 1))).T  # (out, in)
        im = ax.imshow(norms, cmap="viridis", interpolation="nearest", aspect="auto")
        ax.set_title(f"{name}: |kernel| {norms.shape[0]} out x {norms.shape[1]} in", fontsize=8)
        ax.set_xlabel("input channel")
        ax.set_ylabel("output channel")
        fig.colorbar(im, ax=ax, fraction=0.05)
    fig.suptitle("Deeper kernels: L2 norm of each 5x5 kernel (how strongly each input feeds each output)", fontsize=9)
    fig.savefig(path_deep, bbox_inches="tight")
    plt.close(fig)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom else (1.0 if not a.any() and not b.any() else 0.0)


def similarity(acts_a: dict, acts_b: dict) -> dict[str, float]:
    """Cosine similarity of the two inputs' activations at every layer."""
    return {name: round(cosine(acts_a[name], acts_b[name]), 6) for name in LAYERS}


def render_compare_layer(name: str, a: np.ndarray, b: np.ndarray, labels: tuple[str, str], path: Path) -> None:
    """Two inputs' maps side by side (shared colour scale) and their difference."""
    plt = pyplot()
    if a.ndim == 1:  # fc layers: show as grids
        shape = (20, 25) if a.size == 500 else (1, a.size)
        a, b = a.reshape(shape + (1,)), b.reshape(shape + (1,))
    elif a.ndim == 2:
        a, b = a[..., None], b[..., None]
    diff = a - b
    vmax = float(max(a.max(), b.max())) or 1.0
    dlim = float(np.abs(diff).max()) or 1.0
    c = a.shape[-1]
    cols = _grid_columns(c)
    rows = int(np.ceil(c / cols))
    width = 1.0 * cols + 1.2 if c > 1 else 3.2
    height = 1.0 * rows + 1.0 if c > 1 else 3.0
    fig, axes = plt.subplots(1, 3, figsize=(3 * width, height), dpi=DPI)
    panels = [
        (axes[0], a, labels[0], 0, vmax, "magma"),
        (axes[1], b, labels[1], 0, vmax, "magma"),
        (axes[2], diff, f"{labels[0]} - {labels[1]}", -dlim, dlim, "RdBu_r"),
    ]
    for k, (ax, maps, title, lo, hi, cmap) in enumerate(panels):
        # tile numbers on the first panel only: the other two use the same positions
        im = _draw_maps(ax, maps, lo, hi, cmap, label_tiles=c > 1 and k == 0, dead_mark=False)
        ax.set_title(f"{name}: {title}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.03)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def render_similarity(sims: dict[str, float], path: Path, labels: tuple[str, str]) -> str:
    """Plot similarity across the network; returns the hidden layer where the inputs separate most.

    The output layer is left out of that choice: two different predictions are nearly
    orthogonal there by construction, so it would always win and say nothing."""
    plt = pyplot()
    names = list(sims)
    values = [sims[n] for n in names]
    drops = {names[i]: values[i - 1] - values[i] for i in range(1, len(names))}
    apart = min(names[1:-1], key=lambda n: sims[n])
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=DPI)
    ax.plot(range(len(names)), values, marker="o")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylim(min(0, min(values)) - 0.05, 1.05)
    ax.set_xlabel("layer (input to output)")
    ax.set_ylabel("cosine similarity")
    i = names.index(apart)
    ax.annotate(
        f"hidden layers most apart: {apart} ({sims[apart]:.2f})",
        (i, sims[apart]),
        textcoords="offset points",
        xytext=(-60, 25),
        arrowprops={"arrowstyle": "->"},
    )
    biggest_drop = max(drops, key=drops.get)
    ax.set_title(
        f"{labels[0]} vs {labels[1]}: activation similarity per layer (largest drop into {biggest_drop})", fontsize=9
    )
    ax.grid(alpha=0.3)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return apart


SHAPES = {
    "input": "28x28x1",
    "conv1": "24x24x20",
    "conv2": "20x20x20",
    "conv3": "16x16x50",
    "conv4": "12x12x50",
    "conv5": "8x8x50",
    "conv6": "4x4x50",
    "fc1": "500",
}


def render_all(
    model,
    image: np.ndarray,
    out: Path,
    label: str = "input",
    other: np.ndarray | None = None,
    other_label: str = "other",
    charset: str = DIGITS,
) -> dict:
    """Write every picture and index.html into `out` (an existing, empty folder); returns a summary."""
    start = time.perf_counter()
    acts = activations(model, image)
    summary = {
        "label": label,
        "prediction": charset[int(np.argmax(acts["fc2"]))],
        "charset": charset,
        "probabilities": [round(float(p), 6) for p in acts["fc2"]],
        "silent_units": {n: int(np.sum(~np.any(acts[n] > 0, axis=(0, 1)))) for n in CONV_LAYERS},
    }
    render_input(image, out / "input.png", f"{label}: input (28x28)")
    for name in CONV_LAYERS:
        render_conv(name, acts[name], out / f"{name}.png")
    render_fc1(acts["fc1"], out / "fc1.png")
    render_fc2(acts["fc2"], out / "fc2.png", charset=charset)
    render_kernels(model, out / "kernels_conv1.png", out / "kernels_deep.png")
    if other is not None:
        acts_b = activations(model, other)
        labels = (label, other_label)
        for name in LAYERS:
            render_compare_layer(name, acts[name], acts_b[name], labels, out / f"compare_{name}.png")
        sims = similarity(acts, acts_b)
        summary.update(
            compare_label=other_label,
            compare_prediction=charset[int(np.argmax(acts_b["fc2"]))],
            similarity=sims,
            most_apart=render_similarity(sims, out / "similarity.png", labels),
        )
    summary["render_seconds"] = round(time.perf_counter() - start, 3)
    (out / "index.html").write_text(index_html(summary))
    return summary


def index_html(summary: dict) -> str:
    e = html.escape
    label = summary["label"]
    parts = [
        f"<h1>Inside the deep LeNet network: {e(label)}</h1>",
        f"<p>Predicted <b>{e(summary['prediction'])}</b> with probability "
        f"{max(summary['probabilities']):.1%}. Each section is one layer, input at the top, output at "
        "the bottom. Feature maps share one colour scale per layer (black = 0, bright = strongest); "
        "maps marked <span style='color:red'>dead</span> are zero everywhere for this input.</p>",
    ]
    if "similarity" in summary:
        parts.append(
            f"<h2>{e(label)} vs {e(summary['compare_label'])}</h2><p>The network predicts "
            f"{e(summary['prediction'])} and {e(summary['compare_prediction'])}. Among the hidden layers the two "
            f"inputs are most apart at <b>{e(summary['most_apart'])}</b> (cosine similarity of the "
            f"activations {summary['similarity'][summary['most_apart']]:.3f}; 1 = identical, 0 = "
            "nothing in common).</p>"
            "<img src='similarity.png' alt='similarity per layer'>"
        )
    shapes = {**SHAPES, "fc2": str(len(summary["probabilities"]))}
    for name in LAYERS:
        parts.append(f"<h2>{name} <small>({shapes[name]})</small></h2><img src='{name}.png' alt='{name}'>")
        if name == "fc2":
            parts.append(f"<p>One output per character, in this order: <code>{e(summary['charset'])}</code></p>")
        if "similarity" in summary:
            parts.append(
                f"<p>Side by side and difference (similarity "
                f"{summary['similarity'][name]:.3f}):</p><img src='compare_{name}.png' alt='compare {name}'>"
            )
        if name == "conv1":
            parts.append("<p>The 20 learned 5x5 kernels of conv1:</p><img src='kernels_conv1.png' alt='conv1 kernels'>")
        if name == "conv6":
            parts.append(
                "<p>How the deeper layers combine their inputs:</p><img src='kernels_deep.png' alt='deeper kernels'>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}img{max-width:100%}small{color:#666}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(label)} - captchalab visualize</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
