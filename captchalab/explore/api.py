"""The explore page's JSON API over an `Explorer` (server.py): one small handler a route, each
answering JSON, a 4xx with a one-line message for a bad request. Models come only from the
command line; no endpoint takes a path. Uploads are capped in size and decoded by the one safe
decoder (data/images.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from ..data.images import ImageError, ImageLimits
from ..data.media import MEDIA, media_of
from ..kinds import get_kind
from ..errors import CaptchalabError
from ..serving import TooLarge, read_limited, serve_app

STATIC = Path(__file__).parent / "static"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def number(request, name: str, default, kind=float, low=None, high=None):
    """A query parameter as a number within [low, high]; BadRequest says why not."""
    try:
        value = kind(request.query_params.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"{name} must be in [{low}, {high}]")
    return value


def decode_upload(data: bytes, limit: int, media=MEDIA["image"]) -> np.ndarray:
    """An upload decoded by the one safe decoder of its medium (a picture, or a sound for a reader of audio)."""
    if len(data) > limit:
        raise BadRequest(f"the file is {len(data) / 2**20:.1f} MB; uploads are limited to {limit / 2**20:.0f} MB", 413)
    try:
        return media.decode(data, ImageLimits(max_bytes=limit))
    except ImageError as exc:
        raise BadRequest(f"not a usable {'sound' if media.name == 'audio' else 'image'}: {exc}") from None


class Api:
    """The endpoints: each takes the request and returns what is sent back as JSON."""

    def __init__(self, explorer):
        self.explorer = explorer

    async def body(self, request) -> bytes:
        limit = self.explorer.upload_limit
        try:
            return await read_limited(request, limit)
        except TooLarge as exc:
            said = f"uploads are limited to {limit / 2**20:.0f} MB"
            raise BadRequest(
                said if exc.declared is None else f"the file is {exc.declared / 2**20:.1f} MB; {said}", 413
            ) from None

    async def image(self, request) -> np.ndarray:
        return decode_upload(await self.body(request), self.explorer.upload_limit)

    async def models(self, request):
        return self.explorer.describe()

    async def char(self, request):
        view = self.explorer.char_view(request.path_params["model"], await self.image(request))
        view.pop("_acts")
        return view

    async def crop(self, request):
        data = await self.body(request)
        if len(data) != 28 * 28:
            raise BadRequest("a crop is 784 bytes (28x28 grey)")
        view = self.explorer.char_view(
            request.path_params["model"], np.frombuffer(data, np.uint8).reshape(28, 28), prepared=True
        )
        view.pop("_acts")
        return view

    async def compare(self, request):
        try:
            pair = json.loads(await self.body(request))
            first, second = (base64.b64decode(pair[k].partition(",")[2], validate=True) for k in ("first", "second"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadRequest('send JSON {"first": <PNG data URL>, "second": <PNG data URL>}') from None
        limit = self.explorer.upload_limit
        return self.explorer.compare(
            request.path_params["model"], decode_upload(first, limit), decode_upload(second, limit)
        )

    async def kernels(self, request):
        return self.explorer.kernels(request.path_params["model"])

    async def captcha(self, request):
        reader = self.explorer.models.get(request.path_params["model"])
        media = media_of(get_kind(reader.kind)) if reader is not None else MEDIA["image"]
        image = decode_upload(await self.body(request), self.explorer.upload_limit, media)
        length = number(request, "length", 0, int, 0, 8) or None
        return self.explorer.captcha_view(
            request.path_params["model"],
            image,
            length,
            number(request, "grid", 3, int, 3, 4),
            request.query_params.get("prompt") or None,
        )

    async def random_char(self, request):
        return self.explorer.random_char(number(request, "seed", 0, int, 0, 2**31))

    async def random_captcha(self, request):
        q = request.query_params
        return self.explorer.random_captcha(
            q.get("style", "distorted"),
            number(request, "strength", 0.5, float, 0, 1),
            q.get("charset", "digits"),
            number(request, "length", 4, int, 1, 8),
            number(request, "seed", 0, int, 0, 2**31),
        )

    async def challenge(self, request):
        return self.explorer.challenge_view(
            request.path_params["model"],
            request.query_params.get("style") or None,
            number(request, "strength", 0.5, float, 0, 1),
            number(request, "seed", 0, int, 0, 2**31),
        )


def create_app(explorer):
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def answering(work):
        async def endpoint(request):
            try:
                return JSONResponse(await work(request))
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except CaptchalabError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return endpoint

    async def index(request):
        return FileResponse(STATIC / "index.html")

    api = Api(explorer)
    posted = {
        "/api/char/{model}": api.char,
        "/api/crop/{model}": api.crop,
        "/api/compare/{model}": api.compare,
        "/api/captcha/{model}": api.captcha,
    }
    asked = {
        "/api/models": api.models,
        "/api/kernels/{model}": api.kernels,
        "/api/random/char": api.random_char,
        "/api/random/captcha": api.random_captcha,
        "/api/challenge/{model}": api.challenge,
    }
    routes = [
        Route("/", index),
        *(Route(path, answering(work), methods=["POST"]) for path, work in posted.items()),
        *(Route(path, answering(work)) for path, work in asked.items()),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def serve(explorer, host: str, port: int) -> None:
    serve_app(create_app(explorer), host, port)
