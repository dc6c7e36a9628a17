import re

from captchalab.data.mnist import load_mnist
from captchalab.quickstart import run_quickstart


def test_small_quickstart_builds_the_whole_page(tmp_path, mnist_dir):
    messages = []
    out = tmp_path / "quickstart"
    summary = run_quickstart(
        load_mnist(mnist_dir),
        out,
        messages.append,
        mnist_epochs=1,
        train_count=20,
        ctc_count=40,
        sweep_count=4,
        workers=1,
        budget=60,
    )
    assert [m[:3] for m in messages if m[0].isdigit()] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    for path in (
        "report.html",
        "mnist.keras",
        "segment.keras",
        "ctc.keras",
        "sweep/report.html",
        "visualize/index.html",
    ):
        assert (out / path).is_file()
    assert len(summary["sweep"]) == 5
    assert all(set(per) == {"segment (segment)", "ctc (ctc)"} for _, per in summary["sweep"])
    swept = [m for m in messages if m.strip().startswith("strength ")]  # the sweep said in the terminal too
    assert len(swept) == 5 and all("segment (segment) " in m and "ctc (ctc) " in m for m in swept)
    assert swept[0].strip().startswith("strength 0:") and swept[-1].strip().startswith("strength 1:")
    page = (out / "report.html").read_text()
    assert "NOT converged, so a lower bound" in page  # a budget of 60 examples is far too small
    assert not re.search(r"src=[\"'](?!data:)", page)  # every picture inlined
    assert 'href="sweep/report.html"' in page and 'href="visualize/index.html"' in page
    assert not list(tmp_path.glob(".quickstart*"))  # the temporary folder is gone
