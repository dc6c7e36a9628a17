"""The `captchalab` command line: a thin layer over the library, one module per command group
(app.py holds the shared options). Every user-facing failure becomes one `error:` line on
stderr and a non-zero exit; `--verbose` adds the traceback."""

from __future__ import annotations

import errno
import signal
import sys
import traceback

import typer

from ..errors import CaptchalabError
from ..fileio import WRITE_REFUSED
from . import attack, audit, data, grids, humans, show, train  # noqa: F401  (each registers its commands)
from .app import app, as_flags, say


# writes that fail for want of room or rights: the user's to fix, not an internal error
UNWRITABLE = WRITE_REFUSED | {errno.EACCES, errno.EPERM}


def explain(exc: BaseException) -> str:
    """One line for any failure, naming the plugin whose code raised it."""
    from ..plugins import describe_plugin_file, plugin_in_traceback

    if isinstance(exc, OSError) and exc.errno in UNWRITABLE:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where}: {exc.strerror} (a full disk, a file-size limit or a read-only place)"
    where = plugin_in_traceback(exc)
    message = str(exc) if isinstance(exc, CaptchalabError) else f"{type(exc).__name__}: {exc}"
    message = as_flags(" ".join(message.split())) or type(exc).__name__
    if where:
        return f"{describe_plugin_file(where)} failed: {message}"
    if isinstance(exc, CaptchalabError):
        return message
    return f"{message} (an internal error; run with --verbose for the traceback)"


def _terminated(signum, frame):
    # kill's or a batch scheduler's SIGTERM stops a run as Ctrl-C does: Python then exits normally,
    # so the worker pools are shut down (workers.py) rather than left running without a parent
    raise KeyboardInterrupt


def _say_overrides() -> None:
    """One line per plugin the user named that replaced another of its name (a built-in)."""
    from ..plugins import overrides

    for line in dict.fromkeys(overrides):
        say(line)


def main() -> None:
    from .. import runtime

    signal.signal(signal.SIGTERM, _terminated)
    try:
        returned = app(standalone_mode=False)
        _say_overrides()
    except (KeyboardInterrupt, typer.Abort):
        returned = 130
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # the command line itself: an unknown option, a bad value
        context = getattr(exc, "ctx", None)
        say(f"error: {exc.format_message()}" + (f" (see `{context.command_path} --help`)" if context else ""))
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:  # our one-line errors, and anything a plugin or a library raised
        _say_overrides()
        if runtime.VERBOSE:
            traceback.print_exc()
        say(f"error: {explain(exc)}")
        sys.exit(1)
    # outside standalone mode Typer returns an exit code rather than exiting (Ctrl-C: 130)
    if returned == 130:
        say("error: interrupted")
        sys.exit(130)
    if isinstance(returned, int) and returned:
        sys.exit(returned)
