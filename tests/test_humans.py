"""Human studies: the study behind the page (assignment, tokens, saving, bad input), the page's API,
CSV import, the frontier report, a load test of 20 simultaneous simulated participants on a real
server, and the page in a real headless Chromium (Debian's chromium; `.ci/run` installs it)."""

import json
import shutil
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from captchalab.data.dataset import GenerationSpec, generate_dataset, read_dataset
from captchalab.errors import CaptchalabError
from captchalab.humans.answers import Rejected
from captchalab.humans.frontier import frontier_rows, human_results, write_frontier
from captchalab.humans.imports import import_answers
from captchalab.humans.pool import StudySettings, open_study
from captchalab.humans.records import load_answers
from captchalab.humans.server import create_app
from conftest import assert_one_line_error, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("human-data")
    made = {}
    for name, style, count, strength in (
        ("easy", "distorted", 12, 0.2),
        ("hard", "distorted", 12, 0.9),
        ("tiles", "grid3", 8, 0.5),
        ("slide", "slider", 8, 0.5),
        ("turn", "rotation", 8, 0.5),
        ("click", "iconclick", 4, 0.5),
    ):
        generate_dataset(GenerationSpec(style, count, seed=5, strength=strength), root / name)
        made[name] = root / name
    # audio in the recorded voice, which needs no espeak-ng
    spoken = GenerationSpec("spoken", 4, seed=5, strength=0.5, params={"voices": "recorded"})
    generate_dataset(spoken, root / "voice")
    made["voice"] = root / "voice"
    return made


def truth_of(datasets, served):
    """The answer of a served item, as the page would send it (tests know the labels)."""
    item = served.item
    if item.dataset == "attention":
        return item.truth
    if item.kind == "grid":
        return [int(t) for t in item.truth.split()]
    return int(item.truth) if item.kind in ("slider", "rotation") else item.truth


def take_part(study, datasets, wrong=(), simulated=False, stop_after=None):
    """One participant answering every item (right, except the positions in `wrong`)."""
    p = study.start(simulated=simulated)
    answered = 0
    while (served := study.next_item(p.id)) is not None and (stop_after is None or answered < stop_after):
        answer = truth_of(datasets, served)
        if answered in wrong:
            answer = "nope" if served.item.kind == "text" else ([] if served.item.kind == "grid" else 180)
        study.answer(p.id, served.token, answer, ms=1500 + answered, pointer="mouse")
        answered += 1
    return p


def test_each_item_gets_k_different_people_and_nobody_sees_one_twice(datasets, tmp_path):
    study = open_study(
        tmp_path / "s",
        [datasets["easy"], datasets["slide"]],
        StudySettings(answers_per_item=2, per_person=6, practice=1, attention=1),
    )
    people = [take_part(study, datasets) for _ in range(8)]
    answers, skipped = load_answers(tmp_path / "s")
    assert skipped == {}
    main = [a for a in answers if a["phase"] == "main"]
    per_item = Counter((a["dataset"], a["item"]) for a in main)
    assert max(per_item.values()) <= 2
    assert len(per_item) == len(study.main)  # 18 items x 2 answers = 36 <= 8 people x 6: every item reached
    for p in people:
        mine = [(a["dataset"], a["item"]) for a in answers if a["participant"] == p.id]
        assert len(mine) == len(set(mine))
    phases = Counter(a["phase"] for a in answers if a["participant"] == people[0].id)
    assert phases == {"practice": 2, "main": 6, "attention": 1}  # one practice item per kind
    assert all(a["correct"] for a in answers) and all(a["ms"] is not None for a in answers)
    # what is stored is what the docs promise: no wall clock, no address, an opaque id
    assert set(main[0]) == {
        "format",
        "participant",
        "source",
        "phase",
        "seq",
        "dataset",
        "item",
        "kind",
        "design",
        "design_key",
        "answer",
        "truth",
        "correct",
        "ms",
        "server_ms",
        "pointer",
        "trajectory",
        "replays",
        "answer_id",
    }
    assert main[0]["design"]["style"] in ("distorted", "slider")


def test_answers_survive_a_restart_and_the_study_goes_on(datasets, tmp_path):
    settings = StudySettings(answers_per_item=1, per_person=10, practice=0, attention=0)
    study = open_study(tmp_path / "s", [datasets["easy"]], settings)
    take_part(study, datasets, stop_after=4)
    again = open_study(tmp_path / "s")  # the server restarted: same secret, counts read back
    assert sum(again.answered.values()) == 4
    p = take_part(again, datasets)
    assert p.seq == 8  # only the 8 items nobody answered are left
    # a participant met before a restart goes on where they were; an answer sent again is recorded once
    study = open_study(tmp_path / "t", [datasets["easy"]], StudySettings(per_person=5, practice=0, attention=0))
    person = study.start()
    served = study.next_item(person.id)
    study.answer(person.id, served.token, truth_of(datasets, served), answer_id="a-first-answer")
    pending = study.next_item(person.id)  # on screen when the server is killed: not kept
    again = open_study(tmp_path / "t", [datasets["easy"]])  # started again with the datasets given again
    repeated = again.answer(person.id, served.token, "whatever", answer_id="a-first-answer")
    assert repeated["repeated"] and repeated["answer"] == truth_of(datasets, served)
    with pytest.raises(Rejected, match="not served"):
        again.answer(person.id, pending.token, truth_of(datasets, pending), answer_id="a-lost-answer")
    seen = [served.item.key]
    while (item := again.next_item(person.id)) is not None:
        again.answer(person.id, item.token, truth_of(datasets, item), answer_id=f"a-answer-{len(seen)}")
        seen.append(item.item.key)
    assert len(seen) == len(set(seen)) == 5
    answers, _ = load_answers(tmp_path / "t")
    assert [a["answer_id"] for a in answers].count("a-first-answer") == 1 and len(answers) == 5
    with pytest.raises(Rejected, match="does not know you"):
        again.next_item("p-" + "0" * 32)  # not signed by this study
    with pytest.raises(Rejected, match="another answer"):
        again.answer(again.start().id, "t", "x", answer_id="a-first-answer")
    with pytest.raises(CaptchalabError, match="study of other datasets"):
        open_study(tmp_path / "s", [datasets["hard"]])


def test_a_closed_tab_frees_its_item_after_the_hold(datasets, tmp_path):
    study = open_study(
        tmp_path / "s",
        [datasets["easy"]],
        StudySettings(answers_per_item=1, per_person=12, practice=0, attention=0, hold=0.2),
    )
    quitter = study.start()
    left_open = study.next_item(quitter.id)  # shown, never answered
    assert study.next_item(quitter.id).token == left_open.token  # a reload shows the same item
    time.sleep(0.3)
    other = take_part(study, datasets)
    assert other.seq == 12  # the held item was handed on once the hold ended


def test_bad_answers_are_refused_and_nothing_is_recorded_twice(datasets, tmp_path):
    from captchalab.humans.answers import Rejected

    study = open_study(
        tmp_path / "s", [datasets["tiles"], datasets["slide"]], StudySettings(per_person=4, practice=0, attention=0)
    )
    p = study.start()
    served = study.next_item(p.id)
    bad = (
        ["x" * 100, {"a": 1}, [99], [True], float("nan"), None]
        if served.item.kind == "grid"
        else ["12", float("inf"), [1], None, True]
    )
    for answer in bad:
        with pytest.raises(Rejected) as caught:
            study.answer(p.id, served.token, answer)
        assert caught.value.status == 400
    with pytest.raises(Rejected, match="not served"):
        study.answer(p.id, "0" * 32, truth_of(datasets, served))
    with pytest.raises(Rejected, match="does not know you"):
        study.answer("p-0000000000000000", served.token, truth_of(datasets, served))
    other = study.start()
    with pytest.raises(Rejected, match="not served"):  # a token is its participant's only
        study.answer(other.id, served.token, truth_of(datasets, served))
    study.answer(p.id, served.token, truth_of(datasets, served))
    with pytest.raises(Rejected) as caught:
        study.answer(p.id, served.token, truth_of(datasets, served))
    assert caught.value.status == 409
    assert len(load_answers(tmp_path / "s")[0]) == 1


@pytest.fixture(scope="module")
def client(datasets, tmp_path_factory):
    from starlette.testclient import TestClient

    folder = tmp_path_factory.mktemp("api") / "study"
    study = open_study(folder, [datasets["easy"], datasets["turn"]], StudySettings(per_person=3, practice=1))
    return TestClient(create_app(study)), folder


def test_the_api_serves_blind_items_and_says_no_in_4xx(client):
    api, folder = client
    assert api.get("/").status_code == 200
    assert api.post("/api/start", json={"consent": False}).status_code == 400
    pid = api.post("/api/start", json={"consent": True}).json()["participant"]
    item = api.get(f"/api/next?participant={pid}").json()
    assert item["image"].startswith("data:image/png;base64,") and item["phase"] == "practice"
    assert not any(k in json.dumps(item) for k in ("easy", "turn", '.png"', "distorted"))  # blind to the design
    reply = api.post(
        "/api/answer",
        json={
            "participant": pid,
            "token": item["token"],
            "answer": 0 if item["kind"] == "rotation" else "0000",
            "ms": 900,
            "pointer": "mouse",
        },
    ).json()
    assert reply["recorded"] and "truth" in reply  # practice: feedback
    assert api.post("/api/answer", json={"participant": pid, "token": item["token"], "answer": "1"}).status_code == 409
    assert api.post("/api/answer", content=b"{not json").status_code == 400
    assert api.post("/api/answer", content=b"[1, 2]").status_code == 400
    assert api.post("/api/answer", content=b"x" * 70_000).status_code == 413
    assert api.get("/api/next?participant=nobody").status_code == 404
    rejected = api.get("/api/progress").json()["rejected"]
    assert rejected["replayed answer"] == 1 and rejected["oversized request"] == 1
    assert json.loads((folder / "rejections.json").read_text())["malformed request"] == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )
)
def test_fuzzed_answers_get_a_4xx_never_a_crash(client, body):
    api, folder = client
    before = len(load_answers(folder)[0])
    pid = api.post("/api/start", json={"consent": True}).json()["participant"]
    token = api.get(f"/api/next?participant={pid}").json()["token"]
    for payload in (
        body,
        {"participant": pid, "token": token, "answer": body, "ms": body, "pointer": body, "trajectory": body},
    ):
        response = api.post("/api/answer", content=json.dumps(payload))
        assert response.status_code in (200, 400, 404, 409), response.text
    assert len(load_answers(folder)[0]) - before <= 1


def test_import_hashes_workers_refuses_unknown_items_and_repeats(datasets, tmp_path):
    study = open_study(tmp_path / "s", [datasets["easy"], datasets["tiles"]], StudySettings(practice=0))
    easy, tiles = read_dataset(datasets["easy"]), read_dataset(datasets["tiles"])
    rows = [
        "worker,dataset,item,answer,ms",
        f"A17,easy,{easy.filenames[0]},{easy.texts[0]},3200",
        f"A17,easy,{easy.filenames[0]},{easy.texts[0]},3300",  # a repeat
        f"B2,easy,{easy.filenames[0]},wrong,5100",
        f'B2,tiles,{tiles.filenames[0]},"{tiles.texts[0]}",8000',
        "B2,easy,../../etc/passwd,1234,1",  # not an item of the study
        f"C3,tiles,{tiles.filenames[1]},0 99,1",
    ]  # not tiles of a 3x3 grid
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    result = import_answers(study, tmp_path / "a.csv")
    assert result["imported"] == 3
    assert result["refused"] == {"duplicate": 1, "unknown item": 1, "malformed answer": 1}
    answers, _ = load_answers(tmp_path / "s")
    assert [a["correct"] for a in answers] == [True, False, True] or sorted(a["correct"] for a in answers) == [
        False,
        True,
        True,
    ]
    assert not any("A17" in json.dumps(a) or "B2" in json.dumps(a) for a in answers)
    assert len({a["participant"] for a in answers}) == 2
    with pytest.raises(CaptchalabError, match="imported already"):
        import_answers(study, tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("worker,dataset,item,answer\nZ,nowhere,x.png,1\n")
    result = run_cli("humans-import", tmp_path / "b.csv", "--study", tmp_path / "s")
    assert_one_line_error(result, "no usable answer (1 unknown item)")
    (tmp_path / "c.csv").write_text("who,item\n")
    assert_one_line_error(run_cli("humans-import", tmp_path / "c.csv", "--study", tmp_path / "s"), "header must name")


def test_attention_failures_are_left_out_and_the_frontier_marks_what_it_cannot_trust(datasets, tmp_path):
    study = open_study(
        tmp_path / "s",
        [datasets["easy"], datasets["hard"]],
        StudySettings(answers_per_item=3, per_person=8, practice=0, attention=1),
    )
    take_part(open_study(tmp_path / "s2", [datasets["slide"]], StudySettings(per_person=5, practice=0)), datasets)
    for k in range(9):
        take_part(study, datasets, wrong={k % 4})
    careless = study.start()  # fails its attention check: "?" is never a check's digits
    while (served := study.next_item(careless.id)) is not None:
        study.answer(careless.id, served.token, "?" if served.phase == "attention" else truth_of(datasets, served))
    found, left_out = human_results([tmp_path / "s", tmp_path / "s2"], min_answers=20)
    assert (
        left_out["attention_failed_participants"] >= 1
    )  # the careless one (and anyone whose wrong answer hit a check)
    # an attack report on one design (the slider template matcher, off the shelf), and a study report
    # whose attacker had not converged on another, in their documented formats
    out = run_cli("attack", "--attacker", "template", "--dataset", datasets["slide"], "--out", tmp_path / "att")
    assert out.returncode == 0, out.stderr
    hard = json.loads((datasets["hard"] / "manifest.json").read_text())
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "report.json").write_text(
        json.dumps(
            {
                "kind": "study",
                "cells": [
                    {
                        "status": "done",
                        "test": {"style": "distorted", "strength": 0.9, "parameters": hard["parameters"]},
                        "per_attacker": {
                            "ctc": {
                                "captcha_accuracy": 0.4,
                                "captcha_accuracy_ci95": [0.3, 0.5],
                                "count": 100,
                                "state": {"converged": False, "lower_bound": True},
                            }
                        },
                    }
                ],
            }
        )
    )
    report = write_frontier(
        [tmp_path / "s", tmp_path / "s2"], [tmp_path / "att", tmp_path / "st"], tmp_path / "front", min_answers=20
    )
    rows = {r["label"]: r for r in report["rows"]}
    assert set(rows) == {"distorted s=0.2", "distorted s=0.9", "slider s=0.5"}
    assert rows["distorted s=0.9"]["attacker_lower_bound"] and rows["distorted s=0.9"]["best_attacker"] == "ctc"
    assert rows["distorted s=0.2"]["status"] == "no attacker result" and not rows["distorted s=0.2"]["on_front"]
    assert rows["slider s=0.5"]["best_attacker"] == "template"
    assert rows["slider s=0.5"]["status"] == "too few human answers" and not rows["slider s=0.5"]["on_front"]
    assert rows["distorted s=0.9"]["on_front"]  # the only design measured on both axes
    hard_row = rows["distorted s=0.9"]
    lo, hi = hard_row["human_success_ci95"]
    assert lo <= hard_row["human_success"] <= hi and hard_row["human_agreement"] is not None
    text = (tmp_path / "front" / "report.md").read_text()
    assert "not converged" in text and "too few human answers" in text and "SIMULATED" not in text
    assert (tmp_path / "front" / "frontier.png").stat().st_size > 10_000
    assert (tmp_path / "front" / "frontier.csv").is_file()
    # one site offering the hard text design and the slider side by side is as strong as the weaker
    both = write_frontier(
        [tmp_path / "s", tmp_path / "s2"],
        [tmp_path / "att", tmp_path / "st"],
        tmp_path / "front2",
        min_answers=20,
        alternatives=[("distorted@0.9", "slider")],
    )["alternatives"]
    weaker = max((rows["distorted s=0.9"], rows["slider s=0.5"]), key=lambda r: r["attacker_success"])
    assert both[0]["designs"] == ["distorted s=0.9", "slider s=0.5"] and both[0]["weakest"] == weaker["label"]
    assert both[0]["attacker_success"] == weaker["attacker_success"]
    # the hard design's ctc had not converged: the site is a lower bound unless the weaker is read in full
    assert both[0]["attacker_lower_bound"] == (weaker["attacker_success"] < 1)
    # a design whose best attacker passes every challenge is no lower bound, converged or not: nobody does better
    ceiling = {"attacker": "ctc", "success": 1.0, "ci95": [0.9, 1.0], "count": 40, "converged": False,
               "lower_bound": True}  # fmt: skip
    (row,) = frontier_rows({}, {rows["slider s=0.5"]["key"]: [ceiling]})
    assert row["attacker_success"] == 1.0 and not row["attacker_lower_bound"]
    assert "offers side by side" in (tmp_path / "front2" / "report.md").read_text()
    out = run_cli(
        "frontier", "--humans", tmp_path / "s", "--results", tmp_path / "st", "--alternative", "distorted@0.5=slider",
        "--out", tmp_path / "front3",
    )  # fmt: skip
    assert out.returncode == 1 and "no design 'distorted@0.5'" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "front3").exists()


@pytest.fixture
def server(datasets, tmp_path):
    """`captchalab humans` in its own process, as a user starts it."""
    from captchalab.serving import launch

    def start(*names, per_person=5, practice=1, attention=1, k=3):
        args = [a for n in names for a in ("--dataset", datasets[n])]
        process, url = launch(
            [
                "humans",
                *args,
                "--out",
                tmp_path / "study",
                "--per-person",
                per_person,
                "--practice",
                practice,
                "--attention",
                attention,
                "--answers-per-item",
                k,
            ],
            "api/study",
        )
        processes.append(process)
        return url, tmp_path / "study"

    processes = []
    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def test_twenty_simultaneous_participants_lose_no_answer_when_the_server_is_killed(datasets, tmp_path):
    import signal
    import threading

    from captchalab.humans.simulate import Profile, simulate
    from captchalab.serving import free_port, launch

    names = ("easy", "hard", "tiles", "slide", "turn")
    folder, port = tmp_path / "study", free_port()
    args = ["humans", *[a for n in names for a in ("--dataset", datasets[n])], "--out", folder, "--per-person", 6,
            "--practice", 1, "--attention", 1, "--answers-per-item", 3]  # fmt: skip
    process, url = launch(args, "api/study", port=port)
    profiles = [Profile(datasets[n], 0.8, 3.0) for n in names]
    done, failed, started = [], [], time.perf_counter()

    def take_part():
        try:
            done.extend(simulate(url, profiles, participants=20, seed=3))
        except Exception as exc:  # noqa: BLE001 - any failure is the test's
            failed.append(repr(exc))

    participants = threading.Thread(target=take_part)
    participants.start()

    def lines():
        return sum(len(p.read_bytes().splitlines()) for p in (folder / "answers").glob("*.jsonl"))

    while lines() < 60:  # mid-run: a third of the 200 answers in
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = lines()
    next(iter((folder / "answers").glob("*.jsonl"))).open("a").write('{"format": 1, "participant": "p-')  # torn
    # started again as documented: the same --out, the datasets given again
    process, _ = launch(args, "api/study", port=port)
    try:
        participants.join(timeout=120)
    finally:
        process.terminate()
        process.wait(timeout=30)
    took = time.perf_counter() - started
    assert not participants.is_alive() and not failed and len(done) == 20 and killed_at < 20 * 10
    raw = [line for p in (folder / "answers").glob("*.jsonl") for line in p.read_text().splitlines()]
    recorded = Counter(json.loads(line)["answer_id"] for line in raw if line.endswith("}"))
    saved = [i for d in done for i in d["saved"]]
    assert all(recorded[i] == 1 for i in saved)  # every answer the page was told was saved: there, once
    assert sum(d["unrecognised"] for d in done) == 0
    # an answer lost with the server (served before, never written) is refused in one line; the rest go on
    assert sum(d["refused"] for d in done) <= 20 and len(saved) >= 20 * 10 - 20
    answers, skipped = load_answers(folder)
    assert skipped == {"malformed": 1} and len(answers) == len(saved)
    main = Counter((a["dataset"], a["item"]) for a in answers if a["phase"] == "main")
    assert max(main.values()) <= 3
    assert all(a["source"] == "simulated" for a in answers)
    assert all(a["trajectory"] for a in answers if a["kind"] == "slider")
    assert took < 90, took


def lookup(datasets, served):
    """The truth of the served image (or sound), found among the datasets by its content (the page is blind)."""
    import numpy as np
    from captchalab.data.media import media_of_uri

    media = media_of_uri(served["image"])
    shown = media.from_data_uri(served["image"])
    for folder in datasets.values():
        ds = read_dataset(folder)
        for n, t in zip(ds.filenames, ds.texts):
            if (folder / n).suffix in media.suffixes and np.array_equal(media.read(folder / n), shown):
                return t
    raise AssertionError("served challenge not in the datasets")


def launch(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_people_answer_in_a_real_browser(server, datasets):
    from playwright.sync_api import sync_playwright

    url, folder = server("easy", "tiles", per_person=3, practice=0, attention=0, k=1)

    def answer_shown(page, wrong=False):
        page.wait_for_function("current !== null && shownAt !== null")  # the next item, its image on screen
        served = page.evaluate("current")
        kind = served["kind"]
        if kind == "text":
            truth = lookup(datasets, served)
            page.fill("#answer", "wrong" if wrong else truth)
            page.keyboard.press("Enter")
        else:
            truth = lookup(datasets, served)
            chosen = {int(t) for t in truth.split()}
            for k in sorted(chosen ^ {0} if wrong else chosen):
                page.click(f".tile[data-index='{k}']")
            page.click("#verify")
        page.wait_for_function(f"!current || current.token !== '{served['token']}'")
        return kind

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 900, "height": 900})
        errors, requested = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requested.append(r.url))
        page.goto(url)
        page.click("#agree")
        kinds = [answer_shown(page), answer_shown(page, wrong=True)]
        page.wait_for_function("current !== null && shownAt !== null")
        page.close()  # the tab closed midway through the third
        second = browser.new_page()
        second.goto(url)
        second.click("#agree")
        kinds += [answer_shown(second), answer_shown(second), answer_shown(second)]
        second.wait_for_selector("#done:not([hidden])")
        browser.close()
    answers, _ = load_answers(folder)
    assert len(answers) == 5
    by_person = {}
    for a in sorted(answers, key=lambda a: a["seq"]):
        by_person.setdefault(a["participant"], []).append(a)
    first, second = sorted(by_person.values(), key=len)
    assert [a["correct"] for a in first] == [True, False]  # the tab closed on the third: nothing of it recorded
    assert [a["correct"] for a in second] == [True, True, True]
    assert [a["kind"] for a in first + second] == kinds and set(kinds) == {"text", "grid"}
    assert all(a["ms"] is not None and a["ms"] > 0 and a["pointer"] in ("keyboard", "mouse") for a in answers)
    assert not errors, errors
    assert all(u.startswith(url) or u.startswith("data:") for u in requested), requested


def test_bad_command_lines_get_one_line_errors_and_leave_nothing(datasets, tmp_path):
    assert_one_line_error(run_cli("humans", "--out", tmp_path / "a"), "give --dataset")
    assert_one_line_error(run_cli("humans", "--dataset", tmp_path / "nope", "--out", tmp_path / "b"), "does not exist")
    assert_one_line_error(
        run_cli("humans", "--dataset", datasets["easy"], "--per-person", "0", "--out", tmp_path / "c"),
        "--per-person must be at least 1",
    )
    assert not any((tmp_path / n).exists() for n in "abc")
    assert_one_line_error(run_cli("humans-simulate", "--profile", "easy:1.5:3"), "accuracy in [0, 1]")
    assert_one_line_error(
        run_cli("frontier", "--humans", tmp_path / "nope", "--results", tmp_path), "not a human-study folder"
    )
    assert_one_line_error(run_cli("run", "nope.toml", "--humans", tmp_path), "not a human-study folder")


def consented(p, url):
    """A browser on the study page, consent given; (browser, page, the page's errors)."""
    browser = launch(p)
    page = browser.new_page(viewport={"width": 900, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.click("#agree")
    return browser, page, errors


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_sliders_are_dragged_and_pictures_turned_in_a_real_browser(server, datasets):
    from playwright.sync_api import sync_playwright

    url, folder = server("slide", "turn", per_person=2, practice=0, attention=0, k=1)
    with sync_playwright() as p:
        browser, page, errors = consented(p, url)
        for _ in range(2):
            page.wait_for_function("current !== null && shownAt !== null")
            served = page.evaluate("current")
            truth = int(lookup(datasets, served))
            handle, track = page.locator("#handle").bounding_box(), page.locator("#track").bounding_box()
            if served["kind"] == "slider":  # dragged with the mouse to where the piece fits
                span = page.evaluate(
                    "document.querySelector('#captcha').naturalWidth - document.querySelector('#piece').naturalWidth"
                )
                x = track["x"] + handle["width"] / 2 + truth / span * (track["width"] - handle["width"])
                page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
                page.mouse.down()
                page.mouse.move(x, handle["y"] + handle["height"] / 2, steps=12)
                page.mouse.up()
            else:  # turned with the keyboard, one degree a press
                page.focus("#handle")
                for _ in range(truth):
                    page.keyboard.press("ArrowRight")
                page.keyboard.press("Enter")
            page.wait_for_function(f"!current || current.token !== '{served['token']}'")
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    answers = {a["kind"]: a for a in load_answers(folder)[0]}
    assert set(answers) == {"slider", "rotation"}
    assert answers["slider"]["correct"] and answers["slider"]["pointer"] == "mouse"
    assert len(answers["slider"]["trajectory"]) >= 5 and answers["slider"]["trajectory"][-1][1] == int(
        answers["slider"]["answer"]
    )
    assert answers["rotation"]["correct"] and answers["rotation"]["pointer"] == "keyboard"
    assert answers["rotation"]["trajectory"] is None
    assert not errors, errors


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_targets_are_clicked_in_order_with_an_undo_in_a_real_browser(server, datasets):
    from playwright.sync_api import sync_playwright

    from captchalab.kinds import parse_boxes

    url, folder = server("click", per_person=2, practice=0, attention=0, k=1)
    with sync_playwright() as p:
        browser, page, errors = consented(p, url)
        for n in range(2):
            page.wait_for_function("current !== null && shownAt !== null")
            served = page.evaluate("current")
            image = page.locator("#captcha").bounding_box()
            scale = image["width"] / page.evaluate("document.querySelector('#captcha').naturalWidth")
            centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in parse_boxes(lookup(datasets, served))]
            if n == 0:  # a slip first, taken back
                page.mouse.click(image["x"] + 2, image["y"] + 2)
                assert page.locator(".mark").count() == 1
                page.click("#undo")
            for x, y in centres:
                page.mouse.click(image["x"] + x * scale, image["y"] + y * scale)
            assert page.locator("#count").inner_text() == f"{len(centres)} of {len(centres)} clicked"
            page.click("#verify")
            page.wait_for_function(f"!current || current.token !== '{served['token']}'")
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    answers = load_answers(folder)[0]
    assert len(answers) == 2 and all(a["kind"] == "click" and a["correct"] for a in answers), answers
    assert not errors, errors


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_an_audio_challenge_is_played_replayed_and_answered_in_a_real_browser(server, datasets):
    """Headless Chromium with its autoplay flag: the sound loads and plays by itself, a replay is
    counted, and the typed answer is recorded with it (the test asserts events, not sound)."""
    from playwright.sync_api import sync_playwright

    url, folder = server("voice", per_person=2, practice=0, attention=0, k=1)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.click("#agree")
        for n in range(2):
            page.wait_for_function("current !== null && shownAt !== null && plays === 1")  # loaded, then played
            served = page.evaluate("current")
            assert served["widget"] == "audio" and served["image"].startswith("data:audio/wav;base64,")
            assert page.evaluate("document.querySelector('#captcha').duration") > 0.5
            if n == 0:  # played once more from the start
                page.evaluate(
                    "(() => { const a = document.querySelector('#captcha'); a.pause(); a.currentTime = 0; a.play(); })()"
                )
                page.wait_for_function("plays === 2")
            page.fill("#answer", lookup(datasets, served) if n == 0 else "0000")
            page.click("#submit")
            page.wait_for_function(f"!current || current.token !== '{served['token']}'")
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    answers = sorted(load_answers(folder)[0], key=lambda a: a["seq"])
    assert [a["kind"] for a in answers] == ["audio", "audio"]
    assert [a["correct"] for a in answers] == [True, False] and [a["replays"] for a in answers] == [1, 0]
    assert all(a["ms"] is not None for a in answers)
    assert not errors, errors


def test_the_adversarial_report_gets_people_at_the_eps_they_answered(datasets, tmp_path):
    from captchalab.study.adversarial import add_human_results

    study = open_study(
        tmp_path / "s", [datasets["hard"]], StudySettings(answers_per_item=1, per_person=12, practice=0, attention=0)
    )
    take_part(study, datasets, wrong={0, 1, 2})
    hard = json.loads((datasets["hard"] / "manifest.json").read_text())
    report = {
        "kind": "adversarial",
        "style": "distorted",
        "strength": 0.9,
        "parameters": hard["parameters"],
        "count": 100,
        "rows": [{"eps": 0.0, "accuracy": {"ctc": 0.7}}, {"eps": 8.0, "accuracy": {"ctc": 0.1}}],
        "states": {"ctc": {"converged": True, "lower_bound": False}},
    }
    add_human_results(report, [tmp_path / "s"])
    clean, perturbed = report["rows"][0]["humans"], report["rows"][1]["humans"]
    assert clean["human_answers"] == 12 and clean["human_success"] == 0.75 and perturbed is None
    (tmp_path / "adv").mkdir()
    (tmp_path / "adv" / "report.json").write_text(json.dumps(report))
    rows = write_frontier([tmp_path / "s"], [tmp_path / "adv"], tmp_path / "front", min_answers=10)["rows"]
    by_eps = {r["design"]["eps"]: r for r in rows}
    assert by_eps[0.0]["attacker_success"] == 0.7 and by_eps[0.0]["human_success"] == 0.75
    assert by_eps[8.0]["status"] == "no human answers" and by_eps[8.0]["label"].endswith("eps=8/255")


def test_broken_answer_files_are_skipped_line_by_line(datasets, tmp_path):
    study = open_study(tmp_path / "s", [datasets["easy"]], StudySettings(per_person=3, practice=0, attention=0))
    person = take_part(study, datasets)
    path = tmp_path / "s" / "answers" / f"{person.id}.jsonl"
    good = path.read_text().splitlines()
    broken = json.loads(good[0])
    broken["design"] = {"style": 3}
    path.write_text(
        "\n".join(
            [good[0], good[0], '{"torn', json.dumps(broken), json.dumps({**broken, "kind": "x"}), "[]", *good[1:]]
        )
        + "\n"
    )
    answers, skipped = load_answers(tmp_path / "s")
    assert len(answers) == 3 and skipped == {"duplicate": 1, "malformed": 4}
    found, left_out = human_results([tmp_path / "s"])
    assert left_out["malformed"] == 4 and next(iter(found.values()))["human_answers"] == 3
