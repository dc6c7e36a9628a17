import os
import re

from conftest import REPO, run_cli


def test_plugin_guide_example_runs(tmp_path):
    text = (REPO / "docs" / "plugins.md").read_text()
    code = re.search(r"```python\n(# stripes.py\n.*?)```", text, re.S).group(1)
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "stripes.py").write_text(code)
    listed = run_cli("generators", "--plugins", folder)
    assert "stripes: Dark digits behind grey horizontal stripes." in listed.stdout
    made = run_cli(
        "generate",
        "--style",
        "stripes",
        "--plugins",
        folder,
        "--count",
        "4",
        "--strength",
        "0.8",
        "--out",
        tmp_path / "ds",
        "--preview",
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "ds" / "preview.png").is_file()
    assert len(list((tmp_path / "ds").glob("0*.png"))) == 4


def test_python_guide_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", (REPO / "docs" / "python.md").read_text(), re.S).group(1)
    script = tmp_path / "notebook.py"
    script.write_text(code)
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("[(0.0, ")
    assert (tmp_path / "notebook-demo" / "sweep" / "cells.csv").is_file()


def test_the_human_study_example_in_docs_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", (REPO / "docs" / "humans.md").read_text(), re.S).group(1)
    script = tmp_path / "humans.py"
    script.write_text(code)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[('distorted', 10, 0.5)]"


def test_every_link_in_the_guide_leads_somewhere():
    """README, CHANGELOG and every docs page (generated results pages included) link only to files
    that exist: every section is one click away, and no click is a dead end."""
    pages = [REPO / "README.md", REPO / "CHANGELOG.md", *(REPO / "docs").rglob("*.md")]
    dead = [
        f"{page.relative_to(REPO)} -> {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text())
        if not target.startswith(("http://", "https://")) and not (page.parent / target).exists()
    ]
    assert len(pages) > 30 and not dead, dead
