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
    made = run_cli("generate", "--style", "stripes", "--plugins", folder, "--count", "4",
                   "--strength", "0.8", "--out", tmp_path / "ds", "--preview")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "ds" / "preview.png").is_file()
    assert len(list((tmp_path / "ds").glob("0*.png"))) == 4
