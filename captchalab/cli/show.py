"""The commands that show and explain: `adversarial`, `visualize`, `explore` and `quickstart`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import CaptchalabError
from .app import CHARSET_HELP, Data, Force, Humans, Method, Params, Plugins, ReadOnlyAttackers, app, dirs, say


@app.command()
def adversarial(
    style: str = typer.Option(..., help="Style of the clean CAPTCHAs."),
    against: Path = typer.Option(..., help="The differentiable attacker (model) the perturbations are made against."),
    transfer: Optional[List[Path]] = typer.Option(
        None,
        help="Other attackers (models) that read the same "
        "perturbed CAPTCHAs; repeatable. ddddocr joins when installed.",
    ),
    attacker: ReadOnlyAttackers = None,
    defences: str = typer.Option("median3,jpeg75,bits4,blur1", help="Preprocessing defences, comma-separated."),
    eps: str = typer.Option("0,2,4,8,16/255", help="Budgets on 0-255 pixels, comma-separated."),
    method: Method = typer.Option(Method.pgd, help="fgsm, pgd or eot."),
    steps: int = typer.Option(10, help="Gradient steps (pgd, eot)."),
    retrain: bool = typer.Option(False, help="Also fine-tune the target on adversarial CAPTCHAs and attack it again."),
    retrain_count: int = typer.Option(2000, help="With --retrain: training CAPTCHAs (half perturbed)."),
    retrain_budget: Optional[int] = typer.Option(
        None, help="With --retrain: examples the fine-tune sees at most (default: the attacker's fine-tuning budget)."
    ),
    humans: Humans = None,
    count: int = typer.Option(500, help="Clean CAPTCHAs (the same ones at every eps)."),
    length: str = typer.Option("4", help="Characters per CAPTCHA."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: the target's set."),
    strength: float = typer.Option(0.5, help="Style difficulty in [0, 1]."),
    param: Params = None,
    seed: int = typer.Option(7, help="Seed of the clean CAPTCHAs and of the perturbations."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/adversarial-<style>)."),
    force: Force = False,
    plugins: Plugins = None,
):
    """Adversarial CAPTCHAs: white-box and transfer accuracy, defences, readability and adversarial
    training, per eps, in one report."""
    from ..attackers.base import load_attacker, model_charsets
    from ..attackers.ddddocr import available
    from ..data.dataset import make_spec
    from ..fileio import refuse_existing
    from ..generation.adversarial import PerturbSpec, check_target, parse_eps_list
    from ..study.adversarial import AdversarialConfig, parse_defences, run_adversarial
    from ..humans.records import check_study_folders

    check_study_folders(humans or [])
    budgets = parse_eps_list(eps)
    PerturbSpec(method.value, max(budgets), steps).check()
    chosen = parse_defences(defences)
    target_set = model_charsets([against] + list(transfer or []))[0]
    check_target(load_attacker(against, dirs(plugins)))
    spec = make_spec(style, count, length, charset or target_set, seed, strength, param or [], dirs(plugins))
    out = out or Path("results") / f"adversarial-{style}"
    refuse_existing(out, force)
    readers = list(attacker or [])
    if attacker is None:  # by default the off-the-shelf solver joins the transfer attackers when it can
        readers = ["ddddocr"] if available() else []
        if not readers:
            say(
                "ddddocr is not installed: it is left out of the transfer attackers (pip install 'captchalab[ddddocr]')"
            )
    config = AdversarialConfig(
        spec,
        str(against),
        [str(t) for t in transfer or []],
        readers,
        budgets,
        method.value,
        steps,
        chosen,
        retrain,
        retrain_count,
        retrain_budget=retrain_budget,
        humans=[str(h) for h in humans or []],
    )
    report = run_adversarial(config, out, say, dirs(plugins), force=force)
    say(f"done in {report['seconds']:.0f} s")
    typer.echo(str(out / "report.html"))


def _visual_input(
    data: Optional[Path],
    index: Optional[int],
    image: Optional[Path],
    char: Optional[int],
    index_flag: str,
    image_flag: str,
):
    """(28x28 image, label, name) from an MNIST test index or an image file."""
    from ..visualize import visual_input

    if (index is None) == (image is None):
        raise CaptchalabError(f"give exactly one of {index_flag} and {image_flag}")
    return visual_input(data, index, image, char, index_flag)


@app.command()
def visualize(
    model: Path = typer.Option(..., help="A segment attacker or MNIST/characters network (.keras)."),
    mnist_index: Optional[int] = typer.Option(None, help="MNIST test image to show."),
    image: Optional[Path] = typer.Option(None, help="Or an image file: one character or a whole CAPTCHA."),
    char: Optional[int] = typer.Option(None, help="With a CAPTCHA --image: which character (0-based)."),
    compare_index: Optional[int] = typer.Option(None, help="Compare with this MNIST test image."),
    compare_image: Optional[Path] = typer.Option(None, help="Or compare with this image file."),
    data: Data = None,
    out: Optional[Path] = typer.Option(None, help="Output folder (default results/visualize/<name>)."),
    force: Force = False,
):
    """Draw what every layer does for one input (and, optionally, a second one side by side)."""
    from ..fileio import atomic_dir, refuse_existing
    from ..visualize import load_network, render_all

    net, chars = load_network(model)
    first, label, name = _visual_input(data, mnist_index, image, char, "--mnist-index", "--image")
    other = other_label = None
    if compare_index is not None or compare_image is not None:
        other, other_label, other_name = _visual_input(
            data, compare_index, compare_image, None, "--compare-index", "--compare-image"
        )
        name = f"{name}-vs-{other_name}"
    out = out or Path("results") / "visualize" / name
    refuse_existing(out, force)
    with atomic_dir(out, force=True) as tmp:
        summary = render_all(net, first, tmp, label, other, other_label, charset=chars)
    say(
        f"predicted {summary['prediction']!r}"
        + (f" vs {summary['compare_prediction']!r}; most apart at {summary['most_apart']}" if other is not None else "")
        + f"; rendered in {summary['render_seconds']:.1f} s"
    )
    typer.echo(str(out / "index.html"))


@app.command()
def explore(
    model: List[Path] = typer.Option(
        ..., help="A model to explore (segment for the layer views; ctc too); repeatable."
    ),
    port: int = typer.Option(8765, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (this machine only by default)."),
    data: Optional[Path] = typer.Option(
        None, help="MNIST folder for the random digit button (default: $CAPTCHALAB_MNIST)."
    ),
    plugins: Plugins = None,
):
    """A local web page: draw a character or drop a CAPTCHA and watch every layer respond."""
    from ..explore.server import Explorer, serve
    from ..serving import check_port

    if not 1 <= port <= 65535:
        raise CaptchalabError(f"--port must be between 1 and 65535, got {port}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: anyone who can reach this machine can use the page")
    explorer = Explorer(model, str(data) if data else None, dirs(plugins))
    for path, message in explorer.errors.values():
        say(f"warning: {message} (the page says so too)")
    check_port(host, port)
    say(f"captchalab explore on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(explorer, host, port)


@app.command()
def quickstart(
    data: Data = None, out: Path = typer.Option(Path("results/quickstart"), help="Output folder."), force: Force = False
):
    """Show the whole toolkit on built-in defaults in a few minutes; writes OUT/report.html."""
    from ..data.mnist import load_mnist
    from ..fileio import refuse_existing
    from ..quickstart import run_quickstart

    refuse_existing(out, force)
    mnist = load_mnist(data)
    summary = run_quickstart(mnist, out, say, force=force)
    say(f"done in {summary['seconds']:.0f} s; open {out / 'report.html'} in a browser")
    typer.echo(str(out / "report.html"))
