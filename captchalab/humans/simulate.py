"""Simulated participants: programs that take the human-study page over HTTP like people would,
for load tests and for worked examples. Their answers are recorded with source "simulated" and
every result drawn from them says so.

The model is stated per dataset (`Profile`): each answer is right with probability `accuracy`,
and takes a time drawn from a log-normal distribution with median `median_seconds` and log
standard deviation `sigma`. A simulated participant knows the truth of an item by finding the
served image among the datasets' own (by its pixels; the page never names the item), and gets
no attention checks (it could not read them). Like the page, it sends each answer with an id
and waits out a server that does not answer (a restart) or cannot save an answer now (503, a
full disk), for up to `patience` seconds a request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import Source, read_dataset
from ..data.media import media_of_uri
from ..errors import CaptchalabError
from ..kinds import get_kind


@dataclass(frozen=True)
class Profile:
    dataset: Path
    accuracy: float
    median_seconds: float
    sigma: float = 0.5

    @classmethod
    def parse(cls, text: str) -> "Profile":
        """`FOLDER:ACCURACY:MEDIAN_SECONDS`, e.g. `data/easy:0.95:4`."""
        folder, _, rest = text.rpartition(":")
        folder, _, accuracy = folder.rpartition(":")
        try:
            profile = cls(Path(folder), float(accuracy), float(rest))
        except ValueError:
            raise CaptchalabError(f"`profiles` {text!r}: expected FOLDER:ACCURACY:MEDIAN_SECONDS") from None
        if not folder or not 0 <= profile.accuracy <= 1 or not profile.median_seconds > 0:
            raise CaptchalabError(
                f"`profiles` {text!r}: accuracy in [0, 1] and a positive median time, after the folder"
            )
        return profile


def _pixels_key(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()


class Oracle:
    """What a simulated participant knows: each dataset image's answer, found by its pixels."""

    def __init__(self, profiles: list[Profile]):
        self.truths = {}
        for profile in profiles:
            source = Source(dataset=read_dataset(profile.dataset))
            charset = source.dataset.charset
            for i in range(len(source)):
                sample = source.sample(i)
                if sample.image is not None:
                    self.truths[_pixels_key(sample.image)] = (sample.text, sample.question, profile, charset)
        if not self.truths:
            raise CaptchalabError("the profiles' datasets hold no readable image")

    def lookup(self, data_url: str):
        return self.truths.get(_pixels_key(media_of_uri(data_url).from_data_uri(data_url)))


class Client:
    def __init__(self, url: str, timeout: float = 30.0, patience: float = 60.0):
        self.url, self.timeout, self.patience = url.rstrip("/"), timeout, patience

    def call(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        """The server's status and JSON reply, the request sent again while nobody answers."""
        data = None if body is None else json.dumps(body).encode()
        deadline, wait = time.monotonic() + self.patience, 0.05
        while True:
            request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                try:
                    reply = json.loads(exc.read() or b"{}")
                except (OSError, http.client.HTTPException, ValueError):
                    reply = {}
                # 503: the server cannot save now (a full disk); send again, as the page does
                if exc.code != 503 or time.monotonic() > deadline:
                    return exc.code, reply
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
                # no answer, or half of one from a server killed mid-reply: ask again
                if time.monotonic() > deadline:
                    why = getattr(exc, "reason", exc)
                    raise CaptchalabError(f"cannot reach the study page at {self.url}: {why}") from None
            time.sleep(wait)
            wait = min(2 * wait, 1.0)


def run_participant(url: str, oracle: Oracle, seed: int, stop_after: int | None = None) -> dict:
    """One simulated participant from consent to done (or to `stop_after` answers: a closed tab)."""
    rng, ids = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    client = Client(url)
    status, started = client.call("/api/start", {"consent": True, "simulated": True})
    if status != 200:
        raise CaptchalabError(f"the study page refused to start: {started.get('error', status)}")
    pid, sent, refused, unknown, saved = started["participant"], 0, 0, 0, []
    while stop_after is None or sent < stop_after:
        status, item = client.call(f"/api/next?participant={pid}")
        if status != 200:
            raise CaptchalabError(f"the study page refused the next item: {item.get('error', status)}")
        if item.get("done"):
            break
        known = oracle.lookup(item["image"])
        if known is None:  # not one of ours: answer nothing useful, but answer
            unknown += 1
            answer, accuracy, median, sigma = "", 0.0, 5.0, 0.5
        else:
            truth, question, profile, charset = known
            accuracy, median, sigma = profile.accuracy, profile.median_seconds, profile.sigma
            kind = get_kind(item["kind"])  # the answer as the page would send it
            right = rng.random() < accuracy
            answer = kind.page_value(truth, question) if right else kind.wrong_value(truth, question, charset, rng)
        ms = float(np.exp(np.log(median * 1000) + sigma * rng.standard_normal()))
        trajectory = None
        if get_kind(item["kind"]).trajectory and isinstance(answer, int):
            trajectory = [[round(ms * t), round(answer * t)] for t in np.linspace(0.1, 1, 12)]
        # a listener plays a sound again now and then: more often the harder it is to hear
        replays = int(rng.poisson(1.0 - accuracy + 0.2)) if get_kind(item["kind"]).replays else None
        status, reply = client.call(
            "/api/answer",
            {
                "participant": pid,
                "token": item["token"],
                "answer": answer,
                "ms": ms,
                "pointer": "mouse",
                "trajectory": trajectory,
                "replays": replays,
                "answer_id": (answer_id := "s" + ids.bytes(12).hex()),
            },
        )
        sent += 1
        refused += status != 200
        if status == 200:
            saved.append(answer_id)
    return {"participant": pid, "answers": sent, "refused": refused, "unrecognised": unknown, "saved": saved}


def simulate(
    url: str, profiles: list[Profile], participants: int, seed: int = 0, at_once: int | None = None
) -> list[dict]:
    """`participants` simulated people taking the page, `at_once` of them simultaneously (default all)."""
    if participants < 1:
        raise CaptchalabError(f"`participants` must be at least 1, got {participants}")
    oracle = Oracle(profiles)
    with ThreadPoolExecutor(max_workers=at_once or participants) as pool:
        return list(pool.map(lambda k: run_participant(url, oracle, seed * 100_003 + k), range(participants)))
