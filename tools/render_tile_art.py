"""Render the built-in tile art once, from openly licensed emoji sets packaged on npm in Iconify's
JSON form, into small PNGs: captchalab/art/<art style>.zip holds <class>/<emoji>.png, beside
<art style>.LICENSE.txt and <art style>.ATTRIBUTION.txt (run by a maintainer; users get the
pictures inside the package and never need npm or this script).

    python tools/render_tile_art.py [--cache /tmp/tile-art-npm] [--size 96]

With `--folder DIR --styles a,b,...` it writes a tile folder instead (DIR/<class>/<style>-<emoji>.png,
with each style's licence and attribution at DIR's top), of built-in styles (their shipped pictures)
and of further openly licensed sets that are not shipped (EXTRA_STYLES: more drawings of the same
classes, for measuring what a reader gains from them; benchmarks/grid_targets.py --steps more-art).

Needs `npm` (to fetch the packages) and `pip install resvg-py` (resvg, a maintained SVG renderer).
Each art style keeps its licence text and attribution beside its pictures (LICENSE, ATTRIBUTION).
"""

import argparse
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

ART = Path(__file__).resolve().parent.parent / "captchalab" / "art"

# art style -> the npm package of its pictures (Iconify's JSON), and where its licence's text is
# found: (package, version, file in the package); the Iconify packages carry no licence file
STYLES = {
    "noto": {
        "package": ("@iconify-json/noto", "1.2.9"),
        # the Apache License 2.0 text, as another Apache-licensed npm package ships it
        "licence_text": ("rxjs", "7.8.1", "package/LICENSE.txt"),
    },
    "twemoji": {
        "package": ("@iconify-json/twemoji", "1.2.5"),
        "licence_text": ("twemoji", "14.0.2", "package/LICENSE-GRAPHICS"),
    },
    "openmoji": {
        "package": ("@iconify-json/openmoji", "1.2.29"),
        "licence_text": ("openmoji", "17.0.0", "package/LICENSE.txt"),
    },
    "fluent": {"package": ("@iconify-json/fluent-emoji-flat", "1.2.6"), "licence_text": None},
}
CC_BY_4 = ("twemoji", "14.0.2", "package/LICENSE-GRAPHICS")  # the CC-BY-4.0 text, as Twemoji ships it
EXTRA_STYLES = {  # drawn differently from the built-in ones (none is OpenMoji's or derived from it)
    "emojione": {"package": ("@iconify-json/emojione", "1.2.3"), "licence_text": CC_BY_4},
    "emojione-monotone": {"package": ("@iconify-json/emojione-monotone", "1.2.1"), "licence_text": CC_BY_4},
    "noto-v1": {"package": ("@iconify-json/noto-v1", "1.2.5"), "licence_text": STYLES["noto"]["licence_text"]},
    "fluent-high-contrast": {"package": ("@iconify-json/fluent-emoji-high-contrast", "1.2.6"), "licence_text": None},
    # an outlined, hand-drawn style with flat colours, the nearest to OpenMoji's look of these
    "streamline": {
        "package": ("@iconify-json/streamline-emojis", "1.2.4"),
        "licence_text": CC_BY_4,
        "names": {"doughnut": ["doughnut-1", "doughnut-2"], "bird": ["bird-1", "bird-2"]},
    },
    "fxemoji": {
        "package": ("@iconify-json/fxemoji", "1.2.2"),
        "licence_text": STYLES["noto"]["licence_text"],
        "names": {
            "car": ["automobile", "oncomingautomobile"],
            "taxi": ["taxi", "oncomingtaxi"],
            "bus": ["bus", "oncomingbus"],
            "truck": ["deliverytruck", "articulatedlorry"],
            "traffic light": ["verticaltrafficlight", "horizontaltrafficlight"],
            "tree": ["deciduoustree"],
            "palm tree": ["palmtree"],
            "dog": ["dog", "dogside"],
            "cat": ["cat", "catside"],
            "bird": ["bird", "doveofpeace"],
            "house": ["housewithgarden"],
        },
    },
    "fluent-colour": {"package": ("@iconify-json/fluent-emoji", "1.2.7"), "licence_text": None},
}
MIT_MICROSOFT = """MIT License

Copyright (c) Microsoft Corporation.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# class -> the emoji names drawn for it (Iconify names, the same in every set)
CLASSES = {
    "biscuit": ["cookie"],
    "doughnut": ["doughnut"],
    "car": ["automobile", "oncoming-automobile"],
    "taxi": ["taxi", "oncoming-taxi"],
    "bus": ["bus", "oncoming-bus"],
    "truck": ["delivery-truck", "articulated-lorry"],
    "bicycle": ["bicycle"],
    "motorcycle": ["motorcycle"],
    "traffic light": ["vertical-traffic-light", "horizontal-traffic-light"],
    "boat": ["sailboat", "speedboat"],
    "airplane": ["airplane"],
    "tree": ["deciduous-tree", "evergreen-tree"],
    "palm tree": ["palm-tree"],
    "cat": ["cat", "black-cat"],
    "dog": ["dog", "poodle"],
    "bird": ["bird", "dove"],
    "house": ["house", "house-with-garden"],
    "chair": ["chair"],
}


def npm_file(package: str, version: str, member: str, cache: Path) -> bytes:
    """One file of an npm package (npm pack into the cache once)."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / (package.lstrip("@").replace("/", "-") + f"-{version}.tgz")
    if not tarball.is_file():
        subprocess.run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=cache, check=True, capture_output=True)
    with tarfile.open(tarball) as archive:
        return archive.extractfile(member).read()


def licence_text(style: dict, cache: Path) -> str:
    if style["licence_text"] is None:
        return MIT_MICROSOFT
    text = npm_file(*style["licence_text"], cache).decode()
    end = text.find("END OF TERMS AND CONDITIONS")  # the Apache text without another project's appendix
    return text[: end + len("END OF TERMS AND CONDITIONS")] + "\n" if end >= 0 else text


def svg_of(icons: dict, name: str) -> str:
    """An icon's standalone SVG (Iconify keeps bodies without the <svg> element; aliases point at
    another icon, possibly flipped or rotated, which we do not need here)."""
    seen = set()
    while name in icons.get("aliases", {}) and name not in seen:
        seen.add(name)
        name = icons["aliases"][name]["parent"]
    icon = icons["icons"][name]
    width, height = icon.get("width", icons.get("width", 16)), icon.get("height", icons.get("height", 16))
    left, top = icon.get("left", icons.get("left", 0)), icon.get("top", icons.get("top", 0))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="{left} {top} {width} {height}">{icon["body"]}</svg>'
    )


def rendered(style: dict, size: int, cache: Path):
    """A style's pictures as (class, emoji name, PNG bytes), skipping emoji the set does not draw,
    and its attribution."""
    import resvg_py

    package, version = style["package"]
    icons = json.loads(npm_file(package, version, "package/icons.json", cache))
    info = json.loads(npm_file(package, version, "package/info.json", cache))
    known = set(icons["icons"]) | set(icons.get("aliases", {}))
    names = {**CLASSES, **style.get("names", {})}  # a set that names its emoji otherwise says so
    pictures = [
        (cls, picture, bytes(resvg_py.svg_to_bytes(svg_string=svg_of(icons, picture), width=size, height=size)))
        for cls, emoji in names.items()
        for picture in emoji
        if picture in known
    ]
    author, licence = info["author"], info["license"]
    attribution = (
        f"{info['name']} by {author['name']} ({author['url']}), licensed under {licence['title']} "
        f"({licence['url']}).\nRendered from the npm package {package}@{version} (Iconify's JSON of "
        f"the set) with resvg at {size}x{size} px by tools/render_tile_art.py; the pictures are "
        "otherwise unchanged. Only the pictures named in CLASSES there (or the style's names) are included.\n"
    )
    return pictures, attribution


def ship(size: int, cache: Path):
    """The built-in styles into captchalab/art/<style>.zip, with licence and attribution."""
    ART.mkdir(exist_ok=True)
    for name, style in STYLES.items():
        pictures, attribution = rendered(style, size, cache)
        partial = ART / f"{name}.zip.partial"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for cls, picture, png in pictures:
                # a fixed date: the same pictures give the same bytes
                archive.writestr(zipfile.ZipInfo(f"{cls}/{picture}.png", (2026, 1, 1, 0, 0, 0)), png)
        partial.rename(ART / f"{name}.zip")
        (ART / f"{name}.ATTRIBUTION.txt").write_text(attribution)
        (ART / f"{name}.LICENSE.txt").write_text(licence_text(style, cache))


def tile_folder(folder: Path, names: list[str], size: int, cache: Path):
    """A tile folder of the styles `names`: built-in ones as shipped, extra ones rendered."""
    for name in names:
        if name in STYLES:
            with zipfile.ZipFile(ART / f"{name}.zip") as archive:
                pictures = [(*member.split("/"), archive.read(member)) for member in archive.namelist()]
            attribution = (ART / f"{name}.ATTRIBUTION.txt").read_text()
            licence = (ART / f"{name}.LICENSE.txt").read_text()
        else:
            pictures, attribution = rendered(EXTRA_STYLES[name], size, cache)
            licence = licence_text(EXTRA_STYLES[name], cache)
        for cls, picture, png in pictures:
            (folder / cls).mkdir(parents=True, exist_ok=True)
            (folder / cls / f"{name}-{Path(picture).stem}.png").write_bytes(png)
        (folder / f"{name}.ATTRIBUTION.txt").write_text(attribution)
        (folder / f"{name}.LICENSE.txt").write_text(licence)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, default=Path("/tmp/tile-art-npm"))
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--folder", type=Path, help="write a tile folder of --styles here instead")
    parser.add_argument(
        "--styles",
        default="",
        help="with --folder: styles, separated by commas (built in: "
        f"{', '.join(STYLES)}; not shipped: {', '.join(EXTRA_STYLES)})",
    )
    args = parser.parse_args()
    if not args.folder:
        ship(args.size, args.cache)
        return
    names = [n for n in args.styles.split(",") if n]
    unknown = [n for n in names if n not in STYLES and n not in EXTRA_STYLES]
    if unknown or not names:
        parser.error(f"unknown styles {unknown or '(none given)'}")
    tile_folder(args.folder, names, args.size, args.cache)


if __name__ == "__main__":
    main()
