"""Study files: one TOML file describes a robustness study; `expand.build_cells` turns it into
the grid.

    [study]                      # name, seed, charset, length, test_count, expect, ignore_case,
                                 # converged_only (results of unconverged attackers count as failed)
    [grid]                       # style = [...], strength = [...], seeds = N,
                                 # train_style = [...] (style x style), train_count = [...] (adaptation),
                                 # unlabelled_count = [...] (unlabelled CAPTCHAs of the cell's style too)
    [grid.params]                # any generator parameter: name = [values]
    [[attacker]]                 # label and one of: model = "file.keras" | attacker = "ddddocr" |
                                 # attacker = "ctc", train = "cell" or "shared", from, train_count,
                                 # epochs, style / strength (for shared), hparams = {...};
                                 # attacker = "NAME:name=value,..." sets hyper-parameters too

Every mistake is reported before any work starts, in one line naming the file's line.
"""

from __future__ import annotations

import re

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..attackers.base import get_attacker
from ..charset import parse_charset
from ..data.dataset import parse_length
from ..errors import CaptchalabError
from ..plugins import get_generator
from ..registry import split_attacker_spec

STUDY_KEYS = {"name", "seed", "charset", "length", "test_count", "expect", "ignore_case", "plugins", "converged_only"}
GRID_KEYS = {"style", "strength", "seeds", "train_style", "train_count", "unlabelled_count", "params"}
ATTACKER_KEYS = {"label", "model", "attacker", "train", "from", "train_count", "epochs", "style", "strength", "hparams"}
MAX_CELLS = 10_000


class StudyError(CaptchalabError):
    pass


def line_of(text: str, key: str, section: str | None = None, index: int = 0) -> int:
    """The 1-based line where `key` is set in `[section]` (the index-th `[[section]]`), or 1."""
    current, seen = None, -1
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[(\[?)\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(2)
            if current == section:
                seen += 1
            continue
        if re.match(rf"\s*{re.escape(key)}\s*=", line) and current == section and (seen == index or section is None):
            return number
    return next(
        (n for n, line in enumerate(text.splitlines(), 1) if re.match(rf"\s*\[+\s*{re.escape(str(section))}", line)), 1
    )


@dataclass
class Study:
    path: Path
    name: str
    seed: int
    charset: str
    length: tuple[int, int]
    test_count: int
    expect: int | None
    ignore_case: bool
    plugin_dirs: tuple[str, ...]
    converged_only: bool
    grid: dict
    attackers: list[dict]
    text: str = field(repr=False, default="")

    def settings(self) -> dict:
        """What must match for --resume."""
        return {
            "name": self.name,
            "seed": self.seed,
            "charset": self.charset,
            "length": list(self.length),
            "test_count": self.test_count,
            "expect": self.expect,
            "ignore_case": self.ignore_case,
            "grid": self.grid,
            "attackers": self.attackers,
            "converged_only": self.converged_only,
        }


def load_study(path: str | Path, plugin_dirs=()) -> Study:
    """A checked study from its TOML file; `plugin_dirs` are plugin folders beyond those the file
    names (`run --plugins`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise StudyError(f"study file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML ({exc})") from None
    return _StudyFile(path, text).read(data, plugin_dirs)


class _StudyFile:
    """One study file being checked: each mistake is a StudyError naming the file's line."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def fail(self, message: str, key: str, section: str | None = None, index: int = 0):
        raise StudyError(f"{self.path}:{line_of(self.text, key, section, index)}: {message}")

    def typed(self, value, kind, key, section, index=0, what=""):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(f"{key} must be {what or kind.__name__}", key, section, index)
        return value

    def axis(self, table: dict, key, kind, section="grid"):
        values = table.get(key)
        if values is None:
            return None
        if not isinstance(values, list) or not values:
            self.fail(f"{key} must be a non-empty list", key, section)
        for v in values:
            if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
                self.fail(f"{key}: {v!r} is not a {getattr(kind, '__name__', 'number')}", key, section)
        return values

    def read(self, data: dict, plugin_dirs) -> Study:
        for key in data:
            if key not in ("study", "grid", "attacker"):
                self.fail(f"unknown section or key {key!r} (known: study, grid, attacker)", key)
        study, grid = data.get("study", {}), data.get("grid", {})
        attackers = data.get("attacker", [])
        if not isinstance(study, dict) or not isinstance(grid, dict) or not isinstance(attackers, list):
            self.fail("[study] and [grid] must be tables and [[attacker]] an array of tables", "study")
        for section, table, known in (("study", study, STUDY_KEYS), ("grid", grid, GRID_KEYS)):
            for key in table:
                if key not in known:
                    self.fail(f"unknown key {key!r} in [{section}] (known: {', '.join(sorted(known))})", key, section)
        settings = self.settings(study, plugin_dirs)
        from ..plugins import load_plugins

        load_plugins(list(settings["plugin_dirs"]))
        self.grid(grid, settings["plugin_dirs"])
        if not attackers:
            self.fail("no [[attacker]]: a study needs at least one", "attacker")
        labels = set()
        for i, entry in enumerate(attackers):
            self.attacker(entry, i, labels, grid, settings)
        return Study(
            self.path,
            str(study.get("name", self.path.stem)),
            **settings,
            converged_only=self.typed(study.get("converged_only", False), bool, "converged_only", "study"),
            grid=grid,
            attackers=attackers,
            text=self.text,
        )

    def settings(self, study: dict, plugin_dirs) -> dict:
        """[study]: the fields of `Study` it sets, checked."""
        seed = self.typed(study.get("seed", 0), int, "seed", "study")
        try:
            charset = parse_charset(self.typed(study.get("charset", "digits"), str, "charset", "study"))
            length = parse_length(str(study.get("length", 4)))
        except CaptchalabError as exc:
            self.fail(str(exc), "charset" if "charset" in str(exc) else "length", "study")
        test_count = self.typed(study.get("test_count", 500), int, "test_count", "study")
        if test_count < 1:
            self.fail("test_count must be at least 1", "test_count", "study")
        expect = study.get("expect")
        if expect is not None and (self.typed(expect, int, "expect", "study") < 1 or expect > 8):
            self.fail("expect must be between 1 and 8", "expect", "study")
        plugins = tuple(
            str((self.path.parent / p).resolve())
            for p in self.typed(study.get("plugins", []), list, "plugins", "study")
        )
        plugins += tuple(str(Path(p).resolve()) for p in plugin_dirs if str(Path(p).resolve()) not in plugins)
        return {
            "seed": seed,
            "charset": charset,
            "length": length,
            "test_count": test_count,
            "expect": expect,
            "ignore_case": bool(study.get("ignore_case", False)),
            "plugin_dirs": plugins,
        }

    def grid(self, grid: dict, plugins: tuple) -> None:
        """[grid]: its styles and axes, checked against the styles' declared parameters."""
        styles = self.axis(grid, "style", str)
        if not styles:
            self.fail("[grid] needs style = [...] with at least one style", "style", "grid")
        for name in styles + (self.axis(grid, "train_style", str) or []):
            try:
                get_generator(name, list(plugins))
            except CaptchalabError as exc:
                self.fail(str(exc), "train_style" if name not in styles else "style", "grid")
        for s in self.axis(grid, "strength", (int, float)) or [0.5]:
            if not 0 <= s <= 1:
                self.fail(f"strength {s} is outside [0, 1]", "strength", "grid")
        params = grid.get("params", {})
        if not isinstance(params, dict):
            self.fail("[grid.params] must be a table of name = [values]", "params", "grid")
        for name, values in params.items():
            self.axis(params, name, (int, float, str, bool), "grid.params")
            for style in styles:
                try:
                    generator = get_generator(style, list(plugins))
                    for v in values:
                        generator.param(name).check(v)
                except CaptchalabError as exc:
                    self.fail(str(exc), name, "grid.params")
        if self.typed(grid.get("seeds", 1), int, "seeds", "grid") < 1:
            self.fail("seeds must be at least 1", "seeds", "grid")
        for key in ("train_count", "unlabelled_count"):
            counts = self.axis(grid, key, int)
            if counts and any(c < 0 for c in counts):
                self.fail(f"{key} values must be 0 or more", key, "grid")

    def attacker(self, entry, i: int, labels: set, grid: dict, settings: dict) -> None:
        """One [[attacker]], checked and completed in place (resolved paths, its hyper-parameters)."""
        if not isinstance(entry, dict):
            self.fail("each [[attacker]] must be a table", "attacker")
        for key in entry:
            if key not in ATTACKER_KEYS:
                self.fail(
                    f"unknown key {key!r} in [[attacker]] (known: {', '.join(sorted(ATTACKER_KEYS))})",
                    key,
                    "attacker",
                    i,
                )
        label = entry.setdefault("label", entry.get("attacker") or Path(str(entry.get("model", f"attacker{i}"))).stem)
        if label in labels:
            self.fail(f"attacker label {label!r} is used twice", "label", "attacker", i)
        labels.add(label)
        if ("model" in entry) == ("attacker" in entry):
            self.fail('give exactly one of model = "file.keras" and attacker = "name"', "label", "attacker", i)
        if "model" in entry:
            model = self.path.parent / self.typed(entry["model"], str, "model", "attacker", i)
            if not model.is_file():
                self.fail(
                    f"model file {entry['model']} does not exist (paths are relative to the study file)",
                    "model",
                    "attacker",
                    i,
                )
            entry["model"] = str(model.resolve())
            return
        plugins = settings["plugin_dirs"]
        hparams = self.typed(entry.get("hparams", {}), dict, "hparams", "attacker", i, "a table")
        try:  # attacker = "NAME:name=value,..." sets hyper-parameters as on the command line
            name, assignments = split_attacker_spec(self.typed(entry["attacker"], str, "attacker", "attacker", i))
            cls = get_attacker(name, list(plugins))
            hparams = {**hparams, **cls.parse_params(assignments)}
        except CaptchalabError as exc:
            self.fail(str(exc), "attacker", "attacker", i)
        try:
            cls.resolve(hparams)
        except CaptchalabError as exc:
            self.fail(str(exc), "hparams" if "hparams" in entry else "attacker", "attacker", i)
        entry["attacker"], entry["hparams"] = name, hparams
        train = entry.get("train")
        if not cls.trainable:
            if train:
                self.fail(f"attacker {cls.name!r} cannot be trained", "train", "attacker", i)
            return
        self.training(entry, i, cls, grid, plugins)

    def training(self, entry: dict, i: int, cls, grid: dict, plugins: tuple) -> None:
        """How a trainable [[attacker]] trains: per cell or shared, from where, on how many."""
        train = entry.get("train")
        if any(grid.get("unlabelled_count") or ()) and not cls.semi_supervised:
            self.fail(
                f"attacker {cls.name!r} does not train on unlabelled CAPTCHAs (an unlabelled_count axis needs "
                "one that does, such as ctc)",
                "attacker",
                "attacker",
                i,
            )
        if train not in ("cell", "shared"):
            self.fail(
                'a trainable attacker needs train = "cell" or "shared" (or give its model = ...)',
                "train" if "train" in entry else "attacker",
                "attacker",
                i,
            )
        start = self.typed(entry.get("from", "base"), str, "from", "attacker", i)
        if start not in ("scratch", "base"):
            start_path = self.path.parent / start
            if not start_path.is_file():
                self.fail(f"from model {start} does not exist", "from", "attacker", i)
            entry["from"] = str(start_path.resolve())
        if "train_count" in entry:
            self.typed(entry["train_count"], int, "train_count", "attacker", i)
        elif not grid.get("train_count"):
            self.fail("give train_count here or a train_count axis in [grid]", "attacker", "attacker", i)
        if train == "shared" and "style" not in entry:
            self.fail('a shared training needs its style = "..."', "train", "attacker", i)
        if "style" in entry:
            try:
                get_generator(self.typed(entry["style"], str, "style", "attacker", i), list(plugins))
            except CaptchalabError as exc:
                self.fail(str(exc), "style", "attacker", i)
        if "epochs" in entry and self.typed(entry["epochs"], int, "epochs", "attacker", i) < 1:
            self.fail("epochs must be at least 1", "epochs", "attacker", i)
