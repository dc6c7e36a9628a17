"""The vlm attacker against a small OpenAI-compatible server the tests start: it reads every kind
through the kind's prompt and strict parsing, keeps to its concurrency and rate limits, retries
what a loaded server refuses, counts every answer it could not get with its reason, and never
lets the key out of the request's header."""

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from captchalab.attack import attack_many
from captchalab.attackers import make_attacker
from captchalab.data.sources import make_source
from captchalab.errors import CaptchalabError
from conftest import assert_one_line_error, run_cli

KEY = "sk-test-0123456789SECRET"


def pixels(url: str) -> str:
    data = base64.b64decode(url.split(",", 1)[1])
    return hashlib.sha256(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).tobytes()).hexdigest()


class Model:
    """What the local server answers: `answer(request, seen_before)` gives (status, headers, body)
    for a request's JSON; the server records requests, their times and the most in flight."""

    def __init__(self, answer, delay=0.0):
        self.answer, self.delay = answer, delay
        self.requests, self.times, self.headers = [], [], []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()


def serve(model: Model):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with model.lock:
                model.in_flight += 1
                model.most_in_flight = max(model.most_in_flight, model.in_flight)
                seen = body in model.requests
                model.requests.append(body)
                model.times.append(time.monotonic())
                model.headers.append(dict(self.headers))
            time.sleep(model.delay)
            status, headers, reply = model.answer(body, seen) if self.path == "/v1/chat/completions" else (404, {}, b"")
            with model.lock:
                model.in_flight -= 1
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):  # a client that stopped waiting
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def completion(text: str) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"choices": [{"message": {"content": text}}]}).encode()


def truths(source) -> dict[str, tuple[int, str]]:
    """Each challenge's pixels -> (its index, its answer)."""
    out = {}
    for i in range(len(source)):
        sample = source.sample(i)
        out[hashlib.sha256(sample.image.tobytes()).hexdigest()] = (i, sample.text)
    return out


@pytest.fixture
def local_model():
    servers = []

    def start(answer, delay=0.0):
        model = Model(answer, delay)
        server, url = serve(model)
        servers.append(server)
        return model, url

    yield start
    for server in servers:
        server.shutdown()


def test_a_vlm_reads_text_strictly_and_counts_what_it_could_not_get(local_model, monkeypatch):
    monkeypatch.setenv("CAPTCHALAB_TEST_KEY", KEY)
    source = make_source("clean", None, 12, "4", 3, 0.5, [], [], None)
    known = truths(source)

    def answer(body, seen):
        content = body["messages"][0]["content"]
        i, text = known[pixels(content[1]["image_url"]["url"])]
        right = [text, f"`{text}`", f"```\n{text}\n```", " ".join(text), f"<think>digits</think>{text}.", text]
        if i < len(right):
            return completion(right[i])
        if i == 6:
            return completion(f"The answer is {text}")  # not the answer alone
        if i == 7:  # loaded once, then answers
            return completion(text) if seen else (429, {"Retry-After": "0"}, b"slow down")
        if i == 8:
            return 500, {}, b"upstream down"
        if i == 9:
            return 401, {}, b"bad key"
        if i == 10:
            return 200, {}, b"<html>not json</html>"
        return completion(text[::-1] if text[::-1] != text else "0000")  # a wrong reading

    model, url = local_model(answer)
    vlm = make_attacker(f"vlm:endpoint={url},model=tiny-vl,key_env=CAPTCHALAB_TEST_KEY,retries=2,backoff=0,concurrency=2,per_minute=1200")  # fmt: skip
    result, _ = attack_many([vlm], {"clean": source}, workers=0)

    r = result["per_attacker"]["tiny-vl (vlm)"]
    assert r["captcha_accuracy"] == pytest.approx(7 / 12)  # six read right at once, one after a 429
    assert r["failures"] == {"unparsable answer": 1, "HTTP 500": 1, "refused (HTTP 401)": 1,
                             "garbled response (not a chat completion)": 1}  # fmt: skip
    assert r["service"] == {"api": "OpenAI-compatible chat completions", "model": "tiny-vl", "host": url.split("/")[2]}
    assert KEY not in json.dumps(result)
    # what it asked: the kind's prompt, with the length and the set, and the picture; the key as a bearer token
    first = model.requests[0]["messages"][0]["content"][0]["text"]
    assert "4 characters" in first and "0123456789" in first
    assert {h["Authorization"] for h in model.headers} == {f"Bearer {KEY}"}
    assert len(model.requests) == 12 + 1 + 2  # one retry after the 429, two after the 500
    # its limits: two in flight at most, and no faster than 1,200 a minute (one per 50 ms)
    assert model.most_in_flight <= 2
    assert model.times[-1] - model.times[0] >= (len(model.times) - 1) * 0.05 * 0.9


def test_a_vlm_is_asked_each_kind_in_its_own_words(local_model):
    """A grid's prompt and tile numbers, a slider's piece beside its background, a rotation's angle."""
    sources = {
        "grid": make_source("grid3", None, 3, None, 5, 0.5, [], [], None),
        "slider": make_source("slider", None, 3, None, 5, 0.5, [], [], None),
        "rotation": make_source("rotation", None, 3, None, 5, 0.5, [], [], None),
    }
    known = {h: (s, i, t) for s in sources.values() for h, (i, t) in truths(s).items()}

    def answer(body, seen):
        content = body["messages"][0]["content"]
        source, i, text = known[pixels(content[1]["image_url"]["url"])]
        question = source.sample(i).question
        if question and "prompt" in question:  # a grid: answered only when asked for its own prompt
            right = f"showing: {question['prompt']}," in content[0]["text"]
            return completion((text.replace(" ", ", ") or "none") if right else "garbage")
        return completion(text)

    model, url = local_model(answer)
    for kind, source in sources.items():
        model.requests.clear()
        vlm = make_attacker(f"vlm:endpoint={url},model=tiny-vl")
        result, _ = attack_many([vlm], {kind: source}, workers=0)
        assert result["captcha_accuracy"] == 1.0, (kind, result.get("failures"))
        asked = model.requests[0]["messages"][0]["content"]
        assert len(asked) == (3 if kind == "slider" else 2)  # the slider's piece is shown beside it


def test_a_slow_or_unreachable_endpoint_is_counted_not_a_crash(local_model, tmp_path):
    model, url = local_model(lambda body, seen: completion("1234"), delay=1.0)
    source = make_source("clean", None, 2, "4", 3, 0.5, [], [], None)
    vlm = make_attacker(f"vlm:endpoint={url},model=m,timeout=0.2,retries=0")
    result, _ = attack_many([vlm], {"clean": source}, workers=0)
    assert result["failures"] == {"timed out after 0.2 s": 2}

    # nothing listening: one line per attacker on the terminal, the report written, no key anywhere
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    out = tmp_path / "report"
    done = run_cli("attack", "--style", "clean", "--count", "8", "--length", "4", "--attacker",
                   f"vlm:endpoint=http://127.0.0.1:{port}/v1,model=m,key_env=CAPTCHALAB_TEST_KEY,retries=1,backoff=0,concurrency=1",
                   "--out", out, env={"CAPTCHALAB_TEST_KEY": KEY})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("m (vlm)"))
    assert "cannot connect" in line and f"not sent: 127.0.0.1:{port} unreachable (5)" in line
    assert all(KEY not in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert KEY not in done.stdout + done.stderr


def test_a_vlm_badly_named_is_one_line():
    with pytest.raises(CaptchalabError, match="not an http"):
        make_attacker("vlm:endpoint=ftp://host/v1,model=m")
    with pytest.raises(CaptchalabError, match="name the model"):
        make_attacker("vlm:endpoint=http://127.0.0.1:1/v1")
    with pytest.raises(CaptchalabError, match="environment variable"):
        make_attacker("vlm:endpoint=https://user:sk-x@api.example/v1,model=m")
    done = run_cli(
        "attack", "--style", "clean", "--count", "2", "--attacker", "vlm:model=m,key_env=CAPTCHALAB_UNSET_KEY"
    )
    assert_one_line_error(done, "CAPTCHALAB_UNSET_KEY")


def test_no_answer_fails_even_where_selecting_nothing_would_pass():
    from types import SimpleNamespace as Item

    from captchalab.attackers import Reading
    from captchalab.kinds import get_kind

    asked = {"grid": 3, "prompt": "cat"}  # no square shows a cat: selecting none passes
    items = [Item(text="", question=asked, reading=Reading(""), rounds=0, details=None),
             Item(text="", question=asked, reading=Reading("", details={"failure": "HTTP 503"}), rounds=0, details=None)]  # fmt: skip
    assert get_kind("grid").score(items)["success"] == 1
