"""`captchalab humans`: the page people solve CAPTCHAs on, and its small JSON API.

    GET  /                 the page (plain HTML/CSS/JS from this package; nothing from the network)
    GET  /api/study        the consent text and what the study asks
    POST /api/start        {"consent": true[, "simulated": true]} -> {"participant": id, ...}
    GET  /api/next?participant=ID
                           the item on screen: {"token", "phase", "kind", "question", "image",
                           "parts", "position", "total"} (images as PNG data URLs), or {"done": true}
    POST /api/answer       {"participant", "token", "answer", "ms", "pointer", "trajectory", "replays",
                           "answer_id"} -> {"recorded": true[, "correct", "truth" on practice items]}
                           (an answer_id already recorded: the same reply, nothing written)
    GET  /api/progress     answers so far and requests refused, by reason

Bad requests (unknown participant or token, a replay, a malformed or oversized body) get a 4xx
with {"error": "...", "reason": "..."} and are counted in rejections.json; nothing is recorded
twice. A server started again on the same folder knows the participants and answers before it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data.media import media_of
from ..errors import CaptchalabError
from ..kinds import get_kind
from ..serving import TooLarge, png_uri, read_limited, serve_app
from .answers import Rejected
from .pool import HumanStudy

STATIC = Path(__file__).parent / "static"
BODY_LIMIT = 64 * 1024


def served_payload(served) -> dict:
    item = served.item
    question = dict(item.question or {})
    kind = get_kind(item.kind)
    asks = kind.asks.format(**question)
    if served.phase == "attention":
        asks = "Attention check: type the three digits you see."
    return {
        "token": served.token,
        "phase": served.phase,
        "kind": item.kind,
        "widget": kind.widget,
        "asks": asks,
        "question": {k: v for k, v in question.items() if k in kind.page_question},
        "image": media_of(kind).data_uri(served.image),
        "parts": {k: png_uri(v) for k, v in served.parts.items()},
        "position": served.position,
        "total": served.total,
    }


async def json_body(request) -> dict:
    """A request's JSON object, at most BODY_LIMIT bytes; anything else is rejected."""
    declared = request.headers.get("content-length")
    too_large = Rejected(413, "oversized request", f"requests are limited to {BODY_LIMIT // 1024} KB")
    if declared and not declared.isdigit():
        raise too_large
    try:
        raw = await read_limited(request, BODY_LIMIT)
    except TooLarge:
        raise too_large from None
    try:
        body = json.loads(raw)
    except ValueError:
        raise Rejected(400, "malformed request", "send a JSON object") from None
    if not isinstance(body, dict):
        raise Rejected(400, "malformed request", "send a JSON object")
    return body


def json_endpoint(study: HumanStudy, work):
    """An endpoint answering `work(request)` as JSON; a rejected request is counted by the study
    and answered with its status."""
    from starlette.responses import JSONResponse

    async def endpoint(request):
        try:
            return JSONResponse(await work(request), headers={"Cache-Control": "no-store"})
        except Rejected as exc:
            study.reject(exc.reason)
            return JSONResponse({"error": str(exc), "reason": exc.reason}, status_code=exc.status)
        except CaptchalabError as exc:
            return JSONResponse({"error": str(exc)}, status_code=500)

    return endpoint


def create_app(study: HumanStudy):
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def about(request):
        kinds = sorted({it.kind for it in study.main})
        return {
            "consent": study.settings.consent,
            "kinds": kinds,
            "practice": len(study.practice),
            "per_person": min(study.settings.per_person, len(study.main)),
        }

    async def start(request):
        body = await json_body(request)
        if body.get("consent") is not True:
            raise Rejected(400, "no consent", "the study starts only after consent")
        participant = study.start(simulated=body.get("simulated") is True)
        return {"participant": participant.id, "total": len(participant.plan)}

    async def next_item(request):
        served = study.next_item(request.query_params.get("participant"))
        return {"done": True} if served is None else served_payload(served)

    async def answer(request):
        body = await json_body(request)
        record = study.answer(
            body.get("participant"),
            body.get("token"),
            body.get("answer"),
            body.get("ms"),
            body.get("pointer", ""),
            body.get("trajectory"),
            body.get("replays"),
            body.get("answer_id"),
        )
        reply = {"recorded": True}
        if record["phase"] == "practice":
            reply.update(correct=record["correct"], truth=record["truth"])
        return reply

    async def progress(request):
        return study.progress()

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/study", json_endpoint(study, about)),
        Route("/api/start", json_endpoint(study, start), methods=["POST"]),
        Route("/api/next", json_endpoint(study, next_item)),
        Route("/api/answer", json_endpoint(study, answer), methods=["POST"]),
        Route("/api/progress", json_endpoint(study, progress)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def serve(study: HumanStudy, host: str, port: int) -> None:
    serve_app(create_app(study), host, port)
