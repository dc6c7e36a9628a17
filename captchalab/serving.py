"""Serving a local web app (explore, the human-study page): a port check that fails in one line,
and uvicorn, quiet."""
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
        raise CaptchalabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                              + (" (pass another --port)" if exc.errno == 98 else "")) from None


def serve_app(app, host: str, port: int) -> None:
    import uvicorn
    check_port(host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
