"""The house's shape: imports follow the data path downwards with no circles, the CLI stays thin,
and every import path docs/ shows keeps working."""

import ast
import re
from pathlib import Path

from conftest import REPO

# top to bottom; a module may import from its own layer (without a circle) or any layer below
LAYERS = [
    ["cli", "__main__"],
    ["study", "sweep", "matrix", "audit", "quickstart", "explore", "visualize", "humans"],
    ["train", "attack", "pretrained", "testing", "ensemble"],
    ["attackers", "generation", "generator", "render", "generators"],
    ["data"],
    ["score", "report", "plots"],
    ["plugins", "workers", "model", "loop", "training", "pixels", "detector"],
    ["registry", "kinds", "charset", "manifest", "fileio", "runtime", "serving", "sound", "errors"],
]


def modules() -> dict[str, Path]:
    found = {}
    for root, prefix in ((REPO / "captchalab", "captchalab"), (REPO / "generators", "captchalab.generators")):
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((prefix, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Every import between our modules, including those inside functions."""
    found = modules()
    graph = {}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                target = (
                    ".".join(base[: len(base) - node.level + 1] + [node.module or ""]).strip(".")
                    if node.level
                    else node.module or ""
                )
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    targets.add(candidate if candidate in found else target)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = {t for t in targets if t in found and t != name}
    return graph


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/house.md")


def test_no_module_imports_from_a_layer_above_it():
    upward = [
        f"{a} -> {b}"
        for a, targets in import_graph().items()
        for b in targets
        if a != "captchalab" and layer_of(b) < layer_of(a)
    ]
    assert not upward, upward


def test_no_import_circles_between_modules_or_packages():
    graph = import_graph()
    packages = {}
    for a, targets in graph.items():
        for b in targets:
            pa, pb = a.split(".")[1:2], b.split(".")[1:2]
            if pa and pb and pa != pb:
                packages.setdefault(pa[0], set()).add(pb[0])
    for g in (graph, packages):
        state = {}

        def visit(node, path):
            state[node] = "open"
            for nxt in g.get(node, ()):
                assert state.get(nxt) != "open", " -> ".join(path + [nxt])
                if nxt not in state:
                    visit(nxt, path + [nxt])
            state[node] = "done"

        for node in list(g):
            if node not in state:
                visit(node, [node])


def test_the_registry_is_a_leaf():
    assert import_graph()["captchalab.registry"] <= {"captchalab.errors"}


def test_command_modules_stay_small():
    for path in (REPO / "captchalab" / "cli").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 300, path


def test_every_import_path_the_docs_show_still_works():
    lines = set()
    for doc in [*(REPO / "docs").glob("*.md"), REPO / "README.md"]:
        lines |= set(
            re.findall(r"^\s*(from captchalab[\w.]* import [^\n#(]+|import captchalab[\w.]*)", doc.read_text(), re.M)
        )
    assert len(lines) >= 8, lines
    for line in sorted(lines):
        exec(line.strip().rstrip("\\"), {})


def test_public_plugin_paths_are_the_real_objects():
    import captchalab.generation.generator as real
    import captchalab.generator as public
    from captchalab import registry, render
    from captchalab.attackers import register_attacker

    assert public.Generator is real.Generator and public.register is registry.register
    assert register_attacker is registry.register
    assert callable(render.glyph) and callable(render.compose)
    from captchalab.attackers import grid, tiles  # the built-in tile readers moved; their base stays

    assert issubclass(tiles.TileCnn, grid.TileReader) and issubclass(grid.TileReader, grid.GridReader)


def test_worker_side_modules_never_import_tensorflow():
    """Worker processes render, decode and segment; TensorFlow in them would cost seconds and memory."""
    import subprocess
    import sys

    code = (
        "import sys; import captchalab.attack, captchalab.data.dataset, captchalab.attackers.segmenter;"
        "from captchalab.plugins import load_plugins; load_plugins();"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_dotted_name_the_docs_show_resolves():
    """`captchalab.training.TeacherStage` in a sentence is a promise too: each such name imports."""
    import importlib

    names = set()
    for doc in [*(REPO / "docs").glob("*.md"), REPO / "README.md"]:
        names |= set(re.findall(r"`(captchalab(?:\.\w+)+)", doc.read_text()))
    assert len(names) >= 10, names
    for dotted in sorted(names):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                found = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        for attribute in parts[cut:]:
            assert hasattr(found, attribute), f"docs name {dotted}, which does not resolve"
            found = getattr(found, attribute)


def _error_messages(path: Path) -> list[tuple[int, str]]:
    """The string parts of every `raise SomethingError(...)` / `fail(...)` message in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        call = node.exc if isinstance(node, ast.Raise) else node if isinstance(node, ast.Call) else None
        if not isinstance(call, ast.Call):
            continue
        name = ast.unparse(call.func)
        if not (name.endswith(("Error", "Rejected", "BadRequest")) or name.endswith("fail")):
            continue
        for part in ast.walk(call):
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                found.append((call.lineno, part.value))
    return found


def test_the_library_speaks_in_its_parameters_and_the_cli_in_flags():
    """A notebook user is told `count`, a command-line user --count: library messages name no flag
    (commands quoted in backticks aside), and the CLI turns each `parameter` into its flag."""
    flagged = []
    for path in sorted((REPO / "captchalab").rglob("*.py")):
        if "cli" in path.relative_to(REPO / "captchalab").parts:
            continue
        for line, text in _error_messages(path):
            if re.search(r"(?<![\w-])--[a-z]", re.sub(r"`[^`]*`", "", text)):
                flagged.append(f"{path.relative_to(REPO)}:{line}: {text}")
    assert not flagged, "\n".join(flagged)
    from captchalab.cli.app import as_flags
    from captchalab.data.dataset import make_spec
    from captchalab.errors import CaptchalabError

    try:
        make_spec("clean", 0, None, None, 1, 0.5)
    except CaptchalabError as exc:
        assert str(exc).startswith("`count` must be at least 1") and as_flags(str(exc)).startswith("--count must")
    else:
        raise AssertionError("a count of 0 was accepted")


def test_every_package_ships():
    """A non-editable install ships only the packages pyproject.toml lists: each folder of modules
    must be among them (an editable install would hide the omission)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "captchalab").rglob("*.py")
        if "static" not in path.parts
    }
    assert folders <= listed, sorted(folders - listed)
