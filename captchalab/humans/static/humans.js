// The human-study page: consent, then one CAPTCHA at a time until the server says done.
// The participant id lives in sessionStorage only (a reload resumes; nothing outlives the tab).
"use strict";
const $ = (id) => document.getElementById(id);
let participant = sessionStorage.getItem("captchalab-participant");
let current = null;      // the served item
let shownAt = null;      // performance.now() when its image appeared (a sound: first played)
let plays = 0;           // how often a sound was played
let pointer = "";        // how the last interaction was made
let busy = false;

function show(id) {
  for (const s of ["consent", "task", "done"]) $(s).hidden = s !== id;
}

function fail(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function api(path, body) {
  const options = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) {
    throw Object.assign(new Error(data.error || response.statusText), {status: response.status, reason: data.reason});
  }
  return data;
}

// An answer's id, made once per item on screen: sent again after a lost reply, it is recognised.
function answerId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "a" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The answer, sent until the server takes it: a restarting server (no reply at all) and one that
// cannot save it now (503: a full disk) are waited for.
async function send(body) {
  for (let wait = 500; ; wait = Math.min(2 * wait, 5000)) {
    try {
      const reply = await api("/api/answer", body);
      $("error").hidden = true;
      return reply;
    } catch (e) {
      if (e.status !== undefined && e.status !== 503) throw e;  // refused: sending again would not help
      fail(e.status === 503 ? `${e.message}.` : "Saving your answer: the study server is not answering; trying again.");
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

document.addEventListener("pointerdown", (e) => { pointer = e.pointerType || "mouse"; }, true);
document.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key.startsWith("Arrow")) pointer = "keyboard"; }, true);

async function begin() {
  if (participant) return next();
  const study = await api("/api/study");
  $("consent-text").textContent = study.consent;
  $("plan").textContent = `${study.practice} practice CAPTCHAs (you are told whether you were right), then ` +
                          `${study.per_person} more.`;
  show("consent");
}

$("agree").addEventListener("click", async () => {
  const started = await api("/api/start", {consent: true});
  participant = started.participant;
  sessionStorage.setItem("captchalab-participant", participant);
  next();
});

async function next() {
  if (current && current.cleanup) current.cleanup();  // the controls a widget put after the stage
  current = null;
  let item;
  try {
    item = await api(`/api/next?participant=${encodeURIComponent(participant)}`);
  } catch (e) {
    if (e.reason === "unknown participant") {  // a server of another study: start again
      sessionStorage.removeItem("captchalab-participant");
      participant = null;
      fail("This study does not know your session (its server was started on another study): please start again.");
      return begin();
    }
    return fail(e.message);
  }
  if (item.done) {
    sessionStorage.removeItem("captchalab-participant");
    return show("done");
  }
  current = Object.assign(item, {answerId: answerId()});
  show("task");
  $("progress").textContent = `${item.position} of ${item.total}` + (item.phase === "practice" ? " (practice)" : "");
  $("asks").textContent = item.asks;
  $("feedback").textContent = "";
  $("feedback").className = "";
  const stage = $("stage");
  stage.replaceChildren();
  shownAt = null;
  plays = 0;
  const image = item.widget === "audio" ? sound(item) : new Image();
  if (item.widget !== "audio") {
    image.className = "captcha" + (item.widget === "dial" ? " round" : "");
    image.alt = "CAPTCHA";
    image.addEventListener("load", () => { shownAt = performance.now(); }, {once: true});
  }
  image.id = "captcha";
  image.src = item.image;
  stage.append(image);
  (WIDGETS[item.widget] || WIDGETS.text)(stage, image, item);
}

async function submit(answer, trajectory = null) {
  if (busy || !current) return;
  busy = true;
  const ms = shownAt === null ? null : performance.now() - shownAt;
  try {
    const replays = current.widget === "audio" ? Math.max(0, plays - 1) : null;
    const reply = await send({participant, token: current.token, answer, ms, pointer, trajectory, replays,
                              answer_id: current.answerId});
    if (reply.truth !== undefined) {  // practice: say whether it was right
      $("feedback").textContent = reply.correct ? "Right." : `Not quite: the answer was ${reply.truth}.`;
      $("feedback").className = reply.correct ? "right" : "wrong";
      await new Promise((r) => setTimeout(r, 1200));
    }
  } catch (e) {
    if (e.reason === "unknown item") {  // served before a restart and never saved: the next one
      fail("That answer was not saved (the study server restarted): here is the next CAPTCHA.");
    } else if (e.status !== 409) { busy = false; return fail(e.message); }
  }
  busy = false;
  next();
}

// An audio challenge: the player's own controls (replays allowed and counted); its time runs from
// the first play, as an image's runs from its appearing.
function sound(item) {
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "auto";
  audio.className = "captcha sound";
  audio.addEventListener("play", () => {
    plays += 1;
    if (shownAt === null) shownAt = performance.now();
  });
  audio.addEventListener("canplay", () => { audio.play().catch(() => {}); }, {once: true});  // where autoplay is allowed
  return audio;
}

function button(label, id, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.id = id;
  b.addEventListener("click", onClick);
  return b;
}

// A drag track under the image: calls move(fraction in [0, 1]) while dragging, release() on letting go.
function track(after, move, release, steps) {
  const t = document.createElement("div");
  t.id = "track";
  const handle = document.createElement("div");
  handle.id = "handle";
  handle.tabIndex = 0;
  handle.setAttribute("role", "slider");
  t.append(handle);
  after.after(t);
  const fit = () => { t.style.width = `${Math.max(after.offsetWidth, 300)}px`; };  // as wide as the picture, or wider
  fit();
  after.querySelector("img").addEventListener("load", fit);
  let fraction = 0, dragging = false;
  const place = (f) => {
    fraction = Math.min(1, Math.max(0, f));
    handle.style.left = `${fraction * (t.clientWidth - handle.offsetWidth)}px`;
    move(fraction);
  };
  handle.addEventListener("pointerdown", (e) => { dragging = true; handle.setPointerCapture(e.pointerId); });
  handle.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    const box = t.getBoundingClientRect();
    place((e.clientX - box.left - handle.offsetWidth / 2) / (box.width - handle.offsetWidth));
  });
  handle.addEventListener("pointerup", () => { if (dragging) { dragging = false; release(); } });
  handle.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") place(fraction + 1 / steps);
    else if (e.key === "ArrowLeft") place(fraction - 1 / steps);
    else if (e.key === "Enter") release();
    else return;
    e.preventDefault();
  });
  return t;
}

const WIDGETS = {
  text(stage, image) {
    const input = document.createElement("input");
    input.id = "answer";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("autocapitalize", "off");
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") submit(input.value); });
    const form = document.createElement("div");
    form.append(input, document.createElement("br"), button("Submit", "submit", () => submit(input.value)));
    stage.after(form);
    current.cleanup = () => form.remove();
    input.focus();
  },
  tiles(stage, image, item) {  // select squares of an n x n grid (item.question.grid)
    const n = item.question.grid;
    const tiles = document.createElement("div");
    tiles.className = "tiles";
    tiles.style.gridTemplate = `repeat(${n}, 1fr) / repeat(${n}, 1fr)`;
    const chosen = new Set();
    for (let k = 0; k < n * n; k++) {
      const tile = document.createElement("div");
      tile.className = "tile";
      tile.dataset.index = k;
      tile.addEventListener("click", () => {
        chosen.has(k) ? chosen.delete(k) : chosen.add(k);
        tile.classList.toggle("selected", chosen.has(k));
      });
      tiles.append(tile);
    }
    stage.append(tiles);
    const verify = button("Verify", "verify", () => submit([...chosen].sort((a, b) => a - b)));
    stage.after(verify);
    current.cleanup = () => verify.remove();
  },
  slider(stage, image, item) {  // drag the piece (item.parts.piece) along x at item.question.y
    const piece = new Image();
    piece.id = "piece";
    piece.src = item.parts.piece;
    stage.append(piece);
    const trajectory = [];
    let x = 0;
    const scale = () => image.clientWidth / image.naturalWidth;
    const placePiece = () => {
      piece.style.top = `${item.question.y * scale()}px`;
      piece.style.width = `${piece.naturalWidth * scale()}px`;
      piece.style.left = `${x * scale()}px`;
    };
    image.addEventListener("load", placePiece);
    piece.addEventListener("load", placePiece);
    const t = track(stage, (f) => {
      x = Math.round(f * (image.naturalWidth - piece.naturalWidth));
      placePiece();
      if (shownAt !== null) trajectory.push([Math.round(performance.now() - shownAt), x]);
    }, () => submit(x, trajectory.slice(-2000)), 100);
    current.cleanup = () => t.remove();
  },
  click(stage, image, item) {  // click the targets (item.parts.strip, item.question.prompt) in order
    const strip = new Image();
    strip.id = "strip";
    strip.alt = "the targets, in order";
    strip.src = item.parts.strip;
    const words = document.createElement("p");
    words.id = "prompt";
    words.textContent = item.question.prompt ? `In order: ${[...item.question.prompt].join(" ")}` : "";
    stage.before(strip, words);
    const points = [];
    const count = document.createElement("p");
    count.id = "count";
    const marks = () => {
      stage.querySelectorAll(".mark").forEach((m) => m.remove());
      const scale = image.clientWidth / image.naturalWidth;
      points.forEach(([x, y], k) => {
        const mark = document.createElement("div");
        mark.className = "mark";
        mark.textContent = k + 1;
        mark.style.left = `${x * scale}px`;
        mark.style.top = `${y * scale}px`;
        stage.append(mark);
      });
      count.textContent = `${points.length} of ${item.question.count} clicked`;
    };
    image.addEventListener("click", (e) => {
      if (points.length >= item.question.count) return;
      const box = image.getBoundingClientRect();
      const scale = image.naturalWidth / box.width;
      points.push([Math.round((e.clientX - box.left) * scale), Math.round((e.clientY - box.top) * scale)]);
      marks();
    });
    const undo = button("Undo", "undo", () => { points.pop(); marks(); });
    const verify = button("Verify", "verify", () => submit(points.slice()));
    const controls = document.createElement("div");
    controls.append(count, undo, document.createTextNode(" "), verify);
    stage.after(controls);
    marks();
    current.cleanup = () => { controls.remove(); strip.remove(); words.remove(); };
  },
  audio(stage, image, item) {  // listen, then type what was said
    WIDGETS.text(stage, image, item);
  },
  dial(stage, image) {  // turn a round picture
    let angle = 0;
    const t = track(stage, (f) => {
      angle = Math.round(f * 359);
      image.style.transform = `rotate(${angle}deg)`;
    }, () => submit(angle), 359);
    current.cleanup = () => t.remove();
  },
};

begin().catch((e) => fail(e.message));
