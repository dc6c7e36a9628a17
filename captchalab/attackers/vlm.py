"""A vision-language model as a CAPTCHA solver: `vlm` sends each challenge to an OpenAI-compatible
chat-completions endpoint the user names (a local llama.cpp, vLLM or Ollama server, or a service)
and reads the reply strictly. Nothing to train; it reads every kind that declares a prompt.

- What it asks is the kind's (`Kind.solver_prompt`: the page's task and the one form of answer),
  beside the challenge's image and the images the page shows with it (a slider's piece), as PNG
  data URLs; the kind reads the reply (`Kind.solver_answer`). A reply that is not an answer in
  that form is a failure counted with its reason, as is an endpoint that is down, too slow,
  refusing or answering garbage: the attack goes on and the report counts each reason.
- The API key comes from the environment variable `key_env` names, when a request is sent; it is
  sent as a bearer token and never stored. Reports record the model's name and the endpoint's host.
- Load: at most `concurrency` requests in flight and `per_minute` a minute; a request refused for
  load (429, 5xx), timed out or cut off is retried up to `retries` times, after the server's
  Retry-After or `backoff` seconds doubling each time. Once UNREACHABLE challenges in a row could
  not reach the endpoint at all, the rest are not sent (each counted as such).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ..errors import CaptchalabError
from ..kinds import KINDS, Kind
from .base import Attacker, Param, Reading, register_attacker

RETRIED = frozenset({429, 500, 502, 503, 504})  # load and gateway failures; other refusals are final
UNREACHABLE = 3
MAX_REPLY_BYTES = 1 << 20
MAX_WAIT = 120.0  # seconds: the longest pause between tries, whatever a server asks


class Unanswered(Exception):
    """No answer to one challenge; the message is the reason the report counts."""


def data_url(image: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", image)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def reply_text(data: bytes) -> str:
    """The assistant's text in a chat-completions response; Unanswered when it holds none."""
    try:
        content = json.loads(data)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise Unanswered("garbled response (not a chat completion)") from None
    if isinstance(content, list):  # some servers answer in parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise Unanswered("garbled response (not a chat completion)")
    return content


def retry_after(headers) -> float | None:
    value = (headers or {}).get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_WAIT)
    except ValueError:  # absent, or an HTTP date: our own back-off then
        return None


@register_attacker
class Vlm(Attacker):
    name = "vlm"
    description = (
        "A vision-language model behind an OpenAI-compatible chat endpoint you name (llama.cpp, vLLM, "
        "Ollama, a service), asked each kind's task in words; key from an environment variable."
    )
    trainable = False
    any_kind = True
    warm_up = False  # every request is paid for and rate-limited
    uses_length = True
    params = (
        Param("endpoint", str, "http://127.0.0.1:8080/v1", help="the API's base URL; /chat/completions is added"),
        Param("model", str, "", help="the model's name as the endpoint knows it (required)"),
        Param("key_env", str, "", help="the environment variable holding the API key (never recorded)"),
        Param("concurrency", int, 4, 1, 64, "requests in flight at once"),
        Param("per_minute", float, 0.0, 0.0, 1e6, "at most this many requests a minute (0: no limit)"),
        Param("retries", int, 4, 0, 20, "tries again after a 429, a 5xx, a timeout or a cut connection"),
        Param("backoff", float, 1.0, 0.0, MAX_WAIT, "seconds before the first retry, doubling each time"),
        Param("timeout", float, 60.0, 0.1, 3600.0, "seconds to wait for one reply"),
        Param("max_tokens", int, 64, 1, 32768, "the longest reply asked for (a reasoning model needs more)"),
        Param("temperature", float, 0.0, 0.0, 2.0, "sampling temperature (0: its most likely reply)"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        h = self.hparams
        url = urllib.parse.urlsplit(h["endpoint"])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CaptchalabError(f"vlm: endpoint {h['endpoint']!r} is not an http(s) URL (http://HOST:PORT/v1)")
        if url.username or url.password:
            raise CaptchalabError("vlm: the endpoint's URL holds credentials: put the key in an environment variable and name it (key_env=NAME)")  # fmt: skip
        if not h["model"].strip():
            raise CaptchalabError("vlm: name the model the endpoint serves (vlm:model=NAME,endpoint=URL)")
        if h["key_env"] and not os.environ.get(h["key_env"]):
            raise CaptchalabError(f"vlm: the environment variable {h['key_env']} (key_env) is not set")
        self.host = url.netloc
        self.url = h["endpoint"].rstrip("/") + "/chat/completions"

    def for_kind(self, kind):
        if type(KINDS[kind]).solver_prompt is Kind.solver_prompt:
            raise CaptchalabError(f"vlm cannot ask about {kind} CAPTCHAs: that kind declares no solver_prompt")
        return super().for_kind(kind)

    def label(self, detailed=False):
        return f"{self.hparams['model']} (vlm" + (f" at {self.host})" if detailed else ")")

    def report_fields(self):
        return {"service": {"api": "OpenAI-compatible chat completions", "model": self.hparams["model"], "host": self.host}}  # fmt: skip

    def prepare(self, image, hint):
        """(prompt, images as data URLs, the question): the text length when known, else the question
        and the parts the page shows beside the image."""
        kind = KINDS[self.kind]
        question = hint if isinstance(hint, dict) else None
        parts = [question[name] for name, _ in kind.question_parts if question and name in question]
        asked = {k: v for k, v in question.items() if not isinstance(v, np.ndarray)} if question else None
        length = hint if isinstance(hint, int) else None
        prompt = kind.solver_prompt(asked, self.charset, length)
        return prompt, [data_url(image)] + [data_url(p) for p in parts], asked

    def read_prepared(self, batch):
        if getattr(self, "_lock", None) is None:
            self._lock, self._next_slot, self._unreachable, self._down = threading.Lock(), 0.0, 0, None
        with ThreadPoolExecutor(self.hparams["concurrency"]) as pool:
            return list(pool.map(self._solve, batch))

    # -- one challenge ------------------------------------------------------------------------
    def _solve(self, prepared) -> Reading:
        prompt, images, question = prepared
        try:
            if self._down:
                raise Unanswered(f"not sent: {self._down}")
            reply = self._ask(prompt, images)
        except Unanswered as exc:
            return Reading("", [], details={"failure": str(exc)})
        try:
            return Reading(KINDS[self.kind].solver_answer(reply, question, self.charset), [])
        except ValueError:
            return Reading("", [], details={"failure": "unparsable answer"})

    def _ask(self, prompt: str, images: list[str]) -> str:
        h = self.hparams
        content = [{"type": "text", "text": prompt}] + [{"type": "image_url", "image_url": {"url": u}} for u in images]
        body = json.dumps(
            {
                "model": h["model"],
                "messages": [{"role": "user", "content": content}],
                "max_tokens": h["max_tokens"],
                "temperature": h["temperature"],
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(h["key_env"]) if h["key_env"] else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for attempt in range(h["retries"] + 1):
            self._wait_turn()
            wait, unreachable = None, False
            try:
                request = urllib.request.Request(self.url, body, headers, method="POST")
                with urllib.request.urlopen(request, timeout=h["timeout"]) as response:
                    data = response.read(MAX_REPLY_BYTES)
                self._reached()
                return reply_text(data)
            except urllib.error.HTTPError as exc:
                self._reached()
                reason = f"HTTP {exc.code}"
                if exc.code not in RETRIED:
                    raise Unanswered(f"refused ({reason})") from None
                wait = retry_after(exc.headers)
            except urllib.error.URLError as exc:
                timed_out = isinstance(exc.reason, TimeoutError)
                reason = (
                    f"timed out after {h['timeout']:g} s" if timed_out else f"cannot connect ({_words(exc.reason)})"
                )
                unreachable = not timed_out
            except TimeoutError:
                reason = f"timed out after {h['timeout']:g} s"
            except (http.client.HTTPException, OSError) as exc:
                reason = f"connection cut off ({type(exc).__name__})"
            if attempt < h["retries"]:
                time.sleep(wait if wait is not None else min(h["backoff"] * 2**attempt, MAX_WAIT))
        if unreachable:
            with self._lock:
                self._unreachable += 1
                if self._unreachable >= UNREACHABLE:
                    self._down = f"{self.host} unreachable"
        raise Unanswered(reason)

    def _wait_turn(self) -> None:
        """Hold a request until the rate limit lets it go."""
        per_minute = self.hparams["per_minute"]
        if not per_minute:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 60.0 / per_minute
        time.sleep(slot - now)

    def _reached(self) -> None:
        with self._lock:
            self._unreachable = 0


def _words(reason) -> str:
    return getattr(reason, "strerror", None) or str(reason)
