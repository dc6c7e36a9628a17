"""Serving a local web app (explore, the human-study page): a port check that fails in one line,
uvicorn, quiet, images as PNG data URLs, and a way to start a page and wait for it."""

from __future__ import annotations

import socket

from .errors import CaptchalabError


def check_port(host: str, port: int) -> None:
    """A one-line error now, rather than a server that fails to start later."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise CaptchalabError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            + (" (pass another `port`)" if exc.errno == 98 else "")
        ) from None


class TooLarge(Exception):
    """A request body over the limit: `declared` is the size its header gave (None: found while reading)."""

    def __init__(self, declared: int | None):
        super().__init__("request body too large")
        self.declared = declared


async def read_limited(request, limit: int) -> bytes:
    """A Starlette request's body, refused (TooLarge) as soon as it declares or streams more than
    `limit` bytes: an upload is never held whole before it is judged."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(None)
        chunks.append(chunk)
    return b"".join(chunks)


def png_uri(image) -> str:
    """An image (HxW or HxWx3/4 uint8, BGR) as a PNG data URL for a page."""
    import base64
    import cv2

    return "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


def serve_app(app, host: str, port: int) -> None:
    import uvicorn

    check_port(host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launch(args: list[str], ready: str, env: dict | None = None, timeout: float = 60.0, port: int | None = None):
    """Start `captchalab ARGS --port P` in its own process on `port` (default: a free one) and wait
    until `ready` (a path such as "api/study") answers; returns (the process, its base URL). For
    scripts, notebooks and tests that drive a page."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "captchalab", *map(str, args), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CaptchalabError(f"captchalab {args[0]} stopped: {process.stderr.read().strip()[-300:]}")
        try:
            urllib.request.urlopen(url + ready, timeout=1)
            return process, url
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise CaptchalabError(f"captchalab {args[0]} did not answer within {timeout:.0f} s")
