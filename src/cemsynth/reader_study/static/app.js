// Reader study client: sign-in, one case at a time, a 16-bit canvas viewer, answers saved
// on the server as soon as they are given. Everything the reader may see comes from the API;
// the page never holds truth or image type.
"use strict";

const $ = (selector) => document.querySelector(selector);
const VIEWS = ["CC", "MLO"];
const views = ["login-view", "sessions-view", "reading-view", "done-view", "admin-view"];

function show(id) {
  for (const name of views) $("#" + name).hidden = name !== id;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached; your saved answers are safe, try again");
  }
  if (response.status === 401 && path !== "/api/login") {
    signedOut("Your sign-in has expired; please sign in again.");
    throw new ApiError(401, "signed out");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const data = await response.json();
      detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    } catch (err) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}

// --- sign-in --------------------------------------------------------------------------------

function signedOut(message) {
  $("#who").textContent = "";
  $("#signout").hidden = true;
  $("#login-error").textContent = message || "";
  history.replaceState(null, "", "/");
  show("login-view");
}

async function start() {
  let me;
  try {
    me = await (await api("GET", "/api/me")).json();
  } catch (err) {
    if (err.status !== 401) signedOut(err.message);
    return;
  }
  $("#who").textContent = `${me.user} (${me.role})`;
  $("#signout").hidden = false;
  if (me.role === "admin") return showAdmin();
  const match = /session=(\d)/.exec(location.hash);
  if (match) return openSession(Number(match[1]));
  return showSessions();
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("POST", "/api/login", {
      user: $("#login-user").value.trim(),
      credential: $("#login-credential").value,
    });
    $("#login-credential").value = "";
    await start();
  } catch (err) {
    $("#login-error").textContent =
      err.status === 401 ? "Unknown user or wrong credential." : err.message;
  }
});

$("#signout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch (err) { /* signed out anyway */ }
  signedOut("Signed out.");
});

// --- sessions -------------------------------------------------------------------------------

async function showSessions() {
  history.replaceState(null, "", "/");
  let sessions;
  try {
    sessions = await (await api("GET", "/api/sessions")).json();
  } catch (err) {
    return;
  }
  const list = $("#sessions");
  list.replaceChildren();
  for (const s of sessions) {
    const item = document.createElement("li");
    const text = document.createElement("span");
    let state = `${s.n_answered} of ${s.n_cases} answered`;
    if (s.status === "locked") state += ` — locked: ${s.reason || "not open yet"}`;
    if (s.status === "complete") state += " — complete";
    text.textContent = `Session ${s.number}: ${state}`;
    item.append(text);
    if (s.status === "open") {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.session = String(s.number);
      button.textContent = s.n_answered ? "Resume" : "Start";
      button.addEventListener("click", () => openSession(s.number));
      item.append(button);
    }
    list.append(item);
  }
  show("sessions-view");
}

$("#back-to-sessions").addEventListener("click", () => showSessions());
$("#done-back").addEventListener("click", () => showSessions());

// --- the viewer -----------------------------------------------------------------------------

const display = { center: 32768, width: 65535, lut: null, lutKey: "" };

function lookupTable() {
  const key = `${display.center}/${display.width}`;
  if (display.lutKey === key) return display.lut;
  const lut = new Uint8ClampedArray(65536);
  const low = display.center - display.width / 2;
  const scale = 255 / Math.max(1, display.width);
  for (let v = 0; v < 65536; v++) lut[v] = (v - low) * scale;
  display.lut = lut;
  display.lutKey = key;
  return lut;
}

class Viewer {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.pixels = null;
    this.offscreen = document.createElement("canvas");
    this.marks = [];
    this.renderedKey = "";
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.bind();
  }

  setImage(pixels, width, height) {
    this.pixels = pixels;
    this.width = width;
    this.height = height;
    this.offscreen.width = width;
    this.offscreen.height = height;
    this.renderedKey = "";
    this.fit();
  }

  fit() {
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    this.canvas.height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (!this.pixels) return;
    this.scale = Math.min(this.canvas.width / this.width, this.canvas.height / this.height);
    this.x = (this.canvas.width - this.width * this.scale) / 2;
    this.y = (this.canvas.height - this.height * this.scale) / 2;
    this.draw();
  }

  // Window/level is applied to the 16-bit values here, not to an 8-bit picture.
  paint() {
    const key = display.lutKey;
    if (this.renderedKey === key) return;
    const lut = lookupTable();
    const context = this.offscreen.getContext("2d");
    const image = context.createImageData(this.width, this.height);
    const out = image.data;
    const pixels = this.pixels;
    for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
      const v = lut[pixels[i]];
      out[j] = v; out[j + 1] = v; out[j + 2] = v; out[j + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    this.renderedKey = display.lutKey;
  }

  draw() {
    if (!this.pixels) return;
    lookupTable();
    this.paint();
    const c = this.context;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.fillStyle = "#000";
    c.fillRect(0, 0, this.canvas.width, this.canvas.height);
    c.imageSmoothingEnabled = this.scale < 1;
    c.setTransform(this.scale, 0, 0, this.scale, this.x, this.y);
    c.drawImage(this.offscreen, 0, 0);
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.strokeStyle = "#ff4040";
    c.lineWidth = 2;
    for (const mark of this.marks) {
      c.beginPath();
      c.arc(this.x + mark.x * this.scale, this.y + mark.y * this.scale, 14, 0, 2 * Math.PI);
      c.stroke();
    }
    this.canvas.dataset.loaded = "true";
  }

  toImage(event) {
    const box = this.canvas.getBoundingClientRect();
    const ratio = this.canvas.width / box.width;
    const cx = (event.clientX - box.left) * ratio;
    const cy = (event.clientY - box.top) * ratio;
    return { cx, cy, x: (cx - this.x) / this.scale, y: (cy - this.y) / this.scale };
  }

  bind() {
    const canvas = this.canvas;
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      if (!this.pixels) return;
      const p = this.toImage(event);
      const factor = Math.pow(1.0015, -event.deltaY);
      this.scale = Math.min(64, Math.max(0.02, this.scale * factor));
      this.x = p.cx - p.x * this.scale;
      this.y = p.cy - p.y * this.scale;
      this.draw();
    }, { passive: false });
    canvas.addEventListener("dblclick", () => { resetDisplay(); });
    canvas.addEventListener("pointerdown", (event) => {
      if (!this.pixels) return;
      const p = this.toImage(event);
      if (marking && event.button === 0 && !event.shiftKey) {
        if (p.x >= 0 && p.y >= 0 && p.x < this.width && p.y < this.height) {
          this.marks.push({ x: Math.round(p.x), y: Math.round(p.y) });
          this.draw();
          formChanged();
        }
        return;
      }
      const windowing = event.button === 2 || event.shiftKey;
      const start = { x: event.clientX, y: event.clientY, px: this.x, py: this.y,
        center: display.center, width: display.width };
      canvas.setPointerCapture(event.pointerId);
      const move = (e) => {
        const dx = e.clientX - start.x;
        const dy = e.clientY - start.y;
        if (windowing) {
          setDisplay(start.center - dy * 128, start.width + dx * 128);
        } else {
          const ratio = canvas.width / canvas.getBoundingClientRect().width;
          this.x = start.px + dx * ratio;
          this.y = start.py + dy * ratio;
          this.draw();
        }
      };
      const up = () => {
        canvas.removeEventListener("pointermove", move);
        canvas.removeEventListener("pointerup", up);
        canvas.removeEventListener("pointercancel", up);
      };
      canvas.addEventListener("pointermove", move);
      canvas.addEventListener("pointerup", up);
      canvas.addEventListener("pointercancel", up);
    });
  }
}

const viewers = Object.fromEntries(VIEWS.map((v) => [v, new Viewer($("#canvas-" + v))]));
let marking = false;
let defaultDisplay = { center: 32768, width: 65535 };

function setDisplay(center, width) {
  display.center = Math.round(Math.min(65535, Math.max(0, center)));
  display.width = Math.round(Math.min(65535, Math.max(1, width)));
  $("#level").value = String(display.center);
  $("#window").value = String(display.width);
  for (const v of VIEWS) viewers[v].draw();
}

function resetDisplay() {
  setDisplay(defaultDisplay.center, defaultDisplay.width);
  for (const v of VIEWS) viewers[v].fit();
}

// Default window: the 0.5th to 99.5th percentile of both views together.
function autoWindow(images) {
  const histogram = new Uint32Array(65536);
  let total = 0;
  for (const pixels of images) {
    for (let i = 0; i < pixels.length; i++) histogram[pixels[i]]++;
    total += pixels.length;
  }
  const find = (fraction) => {
    let seen = 0;
    for (let v = 0; v < 65536; v++) {
      seen += histogram[v];
      if (seen >= fraction * total) return v;
    }
    return 65535;
  };
  const low = find(0.005);
  const high = Math.max(low + 1, find(0.995));
  return { center: (low + high) / 2, width: high - low };
}

$("#level").addEventListener("input", (e) => setDisplay(Number(e.target.value), display.width));
$("#window").addEventListener("input", (e) => setDisplay(display.center, Number(e.target.value)));
$("#reset-view").addEventListener("click", () => resetDisplay());
window.addEventListener("resize", () => { for (const v of VIEWS) viewers[v].fit(); });

function setMarking(on) {
  marking = on;
  $("#mark-mode").setAttribute("aria-pressed", on ? "true" : "false");
  for (const v of VIEWS) viewers[v].canvas.classList.toggle("marking", on);
}
$("#mark-mode").addEventListener("click", () => setMarking(!marking));
$("#clear-marks").addEventListener("click", () => {
  for (const v of VIEWS) { viewers[v].marks = []; viewers[v].draw(); }
  formChanged();
});

async function loadImage(code) {
  const response = await api("GET", `/api/images/${code}`);
  const width = Number(response.headers.get("X-Image-Width"));
  const height = Number(response.headers.get("X-Image-Height"));
  const buffer = await response.arrayBuffer();
  // The server sends little-endian uint16; so is every browser platform in use.
  return { pixels: new Uint16Array(buffer), width, height };
}

// --- the answer form ------------------------------------------------------------------------

let currentCase = null;
let currentSession = 0;
let draftTimer = 0;

function radioValue(name) {
  const checked = document.querySelector(`input[name="${name}"]:checked`);
  return checked ? checked.value : null;
}

function formState() {
  const marks = [];
  for (const v of VIEWS) for (const m of viewers[v].marks) marks.push({ view: v, x: m.x, y: m.y });
  return {
    bpe: radioValue("bpe"),
    lesion: radioValue("lesion") === null ? null : Number(radioValue("lesion")),
    confidence: radioValue("confidence") === null ? null : Number(radioValue("confidence")),
    artifacts: {
      halo: $("#artifact-halo").checked,
      hallucination: $("#artifact-hallucination").checked,
      other: $("#artifact-other").checked,
    },
    comment: $("#comment").value,
    marks,
  };
}

function fillForm(draft) {
  $("#answer-form").reset();
  for (const v of VIEWS) viewers[v].marks = [];
  if (draft) {
    for (const name of ["bpe", "lesion", "confidence"]) {
      if (draft[name] === null || draft[name] === undefined) continue;
      const input = document.querySelector(`input[name="${name}"][value="${draft[name]}"]`);
      if (input) input.checked = true;
    }
    const artifacts = draft.artifacts || {};
    $("#artifact-halo").checked = !!artifacts.halo;
    $("#artifact-hallucination").checked = !!artifacts.hallucination;
    $("#artifact-other").checked = !!artifacts.other;
    $("#comment").value = draft.comment || "";
    for (const m of draft.marks || []) {
      if (viewers[m.view]) viewers[m.view].marks.push({ x: m.x, y: m.y });
    }
  }
  updateMarkControls();
}

function updateMarkControls() {
  const yes = radioValue("lesion") === "1";
  $("#mark-mode").disabled = !yes;
  $("#clear-marks").disabled = !yes;
  if (!yes) {
    setMarking(false);
    for (const v of VIEWS) { viewers[v].marks = []; viewers[v].draw(); }
  }
}

// Unfinished answers are kept on the server too, so a reload or a crash loses nothing.
function formChanged() {
  updateMarkControls();
  if (!currentCase) return;
  const code = currentCase.code;
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => {
    api("PUT", `/api/cases/${code}/draft`, formState()).catch(() => {});
  }, 300);
}
$("#answer-form").addEventListener("change", formChanged);
$("#comment").addEventListener("input", formChanged);

function setStatus(text, bad) {
  $("#status").textContent = text;
  $("#status").classList.toggle("bad", !!bad);
}

$("#answer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!currentCase) return;
  const state = formState();
  const missing = ["bpe", "lesion", "confidence"].filter((k) => state[k] === null);
  if (missing.length) {
    setStatus(`Please answer: ${missing.join(", ")}.`, true);
    return;
  }
  clearTimeout(draftTimer);
  const button = $("#submit-answer");
  button.disabled = true;
  setStatus("Saving…");
  try {
    await api("POST", `/api/cases/${currentCase.code}/answer`, state);
    setStatus("Saved.");
    await openSession(currentSession);
  } catch (err) {
    if (err.status === 409) {
      await openSession(currentSession);
      setStatus("That case was already saved; here is the next one.");
    } else if (err.status !== 401) {
      setStatus(`Not saved: ${err.message}`, true);
    }
  } finally {
    button.disabled = false;
  }
});

// --- reading a session ----------------------------------------------------------------------

async function openSession(number) {
  let data;
  try {
    data = await (await api("GET", `/api/sessions/${number}/current`)).json();
  } catch (err) {
    if (err.status === 403 || err.status === 404) return showSessions();
    if (err.status !== 401) setStatus(err.message, true);
    return;
  }
  currentSession = number;
  history.replaceState(null, "", `#session=${number}`);
  if (!data.case) {
    currentCase = null;
    $("#done-text").textContent =
      `Thank you. All ${data.session.n_cases} cases of session ${number} are saved.`;
    show("done-view");
    return;
  }
  const c = data.case;
  currentCase = c;
  show("reading-view");
  $("#case-title").textContent = `Session ${number} · ${c.laterality === "L" ? "Left" : "Right"} breast`;
  $("#case-position").textContent = `Case ${c.position} of ${data.session.n_cases}`;
  $("#case-position").dataset.case = c.code;
  for (const v of VIEWS) {
    viewers[v].pixels = null;  // never draw the previous case under the new one's marks
    viewers[v].canvas.dataset.loaded = "false";
    $("#caption-" + v).textContent = `${c.laterality}${v}`;
  }
  fillForm(c.draft);
  setStatus(c.draft ? "Your unfinished answer was restored." : "");
  const loaded = await Promise.all(VIEWS.map((v) => loadImage(c.images[v])));
  if (currentCase !== c) return;
  defaultDisplay = autoWindow(loaded.map((image) => image.pixels));
  display.center = Math.round(defaultDisplay.center);
  display.width = Math.round(defaultDisplay.width);
  VIEWS.forEach((v, i) => viewers[v].setImage(loaded[i].pixels, loaded[i].width, loaded[i].height));
  setDisplay(display.center, display.width);
}

// --- admin ----------------------------------------------------------------------------------

async function showAdmin() {
  let data;
  try {
    data = await (await api("GET", "/api/admin/progress")).json();
  } catch (err) {
    return;
  }
  const body = $("#admin-progress tbody");
  body.replaceChildren();
  for (const [reader, sessions] of Object.entries(data.readers)) {
    for (const s of sessions) {
      const row = document.createElement("tr");
      for (const text of [reader, s.number, s.status, `${s.n_answered} / ${s.n_cases}`,
        s.opens_at || s.reason]) {
        const cell = document.createElement("td");
        cell.textContent = String(text);
        row.append(cell);
      }
      body.append(row);
    }
  }
  show("admin-view");
}

start();
