// Pictor's web page: the OpenAI-compatible API of this server, progress from its server-sent events. No libraries.
"use strict";
const $ = id => document.getElementById(id);
const samplers = { diffusion: ["dpm++", "ddim", "ddpm"], dalle: ["dalle"] };
let models = [];

function headers(json = true) {
  const h = json ? { "Content-Type": "application/json" } : {};
  const key = $("key").value || localStorage.getItem("pictor-key");
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function loadModels() {
  const r = await fetch("/v1/models", { headers: headers() });
  if (r.status === 401) {
    document.querySelector(".key").hidden = false;
    $("status").textContent = "this server needs an API key";
    return;
  }
  models = (await r.json()).data;
  $("model").replaceChildren(...models.map(m => new Option(`${m.id} (${m.family}, ${m.size})`, m.id)));
  $("status").textContent = `${models.length} model(s)`;
  chooseModel();
}

function chooseModel() {
  const m = models.find(x => x.id === $("model").value);
  if (!m) return;
  $("sampler").replaceChildren(...(samplers[m.family] || [m.default_sampler]).map(s => new Option(s, s)));
  $("sampler").value = m.default_sampler;
  $("steps").placeholder = m.default_steps;
  $("steps").disabled = m.family === "dalle";
  $("guidance").placeholder = m.default_guidance;
}

function follow(job) {
  const events = new EventSource(`/v1/jobs/${job}/events`);
  events.addEventListener("progress", e => {
    const p = JSON.parse(e.data);
    $("bar").max = p.total; $("bar").value = p.step;
    $("step").textContent = `step ${p.step} of ${p.total}`;
    if (p.preview) $("preview").src = "data:image/png;base64," + p.preview;
  });
  events.addEventListener("queued", e => { $("step").textContent = `queued (${JSON.parse(e.data).position} ahead)`; });
  const close = () => events.close();
  events.addEventListener("done", close);
  events.addEventListener("failed", close);
  return events;
}

function newJobId() {
  return crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)),
    b => b.toString(16).padStart(2, "0")).join("");
}

// Posts one images request (JSON for generations, a FormData for edits and variations), following its progress;
// adds its images to the gallery.
async function run(path, body, shown) {
  $("error").textContent = "";
  const job = newJobId();
  $("live").hidden = false; $("bar").value = 0; $("generate").disabled = true;
  const events = follow(job);
  try {
    const h = headers(!(body instanceof FormData)); h["X-Pictor-Job-Id"] = job;
    const r = await fetch(path, { method: "POST", headers: h,
      body: body instanceof FormData ? body : JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    j.data.forEach(item => addToGallery(item, shown));
    $("step").textContent = "done";
  } catch (e) {
    $("error").textContent = e.message;
  } finally {
    events.close();
    $("generate").disabled = false;
  }
}

function addToGallery(item, shown) {
  const card = document.createElement("div");
  card.className = "card";
  const src = "data:image/png;base64," + item.b64_json;
  const frame = document.createElement("div");
  frame.className = "frame";
  const img = new Image(); img.src = src; img.alt = shown.prompt || "variation";
  frame.append(img);
  const text = document.createElement("p");
  text.textContent = `${shown.label || shown.prompt} (seed ${item.seed})`;
  const link = document.createElement("a");
  link.href = src; link.download = `pictor-${item.seed}.png`; link.textContent = "download PNG";
  card.append(frame, text, link);
  const m = models.find(x => x.id === shown.model);
  if (m && m.variations) card.append(button("variations", () => vary(src, shown)));
  if (m && m.edits && m.edits.includes("inpaint")) card.append(button("edit", () => openEditor(card, src, shown)));
  $("gallery").prepend(card);
}

function button(text, onclick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = text; b.className = text; b.onclick = onclick;
  return b;
}

async function pngBlob(dataUrl) { return (await fetch(dataUrl)).blob(); }

function seedField(form) { if ($("seed").value) form.append("seed", $("seed").value); }

// A variation: image-to-image of the image from the empty prompt (POST /v1/images/variations).
async function vary(src, shown) {
  const form = new FormData();
  form.append("image", await pngBlob(src), "image.png");
  form.append("model", shown.model); form.append("n", "1"); form.append("response_format", "b64_json");
  seedField(form);
  await run("/v1/images/variations", form, { model: shown.model, label: "variation of: " + shown.prompt,
    prompt: "" });
}

// The edit panel under a card: a new prompt and strength, and optionally a rectangle dragged on the image, which
// becomes the inpainting mask (transparent inside, as OpenAI's masks are); without one the edit is image-to-image.
function openEditor(card, src, shown) {
  if (card.querySelector(".editor")) return;
  const img = card.querySelector("img");
  const canvas = document.createElement("canvas");
  canvas.className = "rect"; canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  card.querySelector(".frame").append(canvas);
  let rect = null, start = null;
  const at = e => {
    const b = canvas.getBoundingClientRect();
    return [Math.floor((e.clientX - b.left) / b.width * canvas.width),
      Math.floor((e.clientY - b.top) / b.height * canvas.height)];
  };
  const draw = () => {
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    if (rect) { g.fillStyle = "rgba(255, 0, 80, 0.4)"; g.fillRect(rect.x, rect.y, rect.w, rect.h); }
  };
  canvas.onmousedown = e => { start = at(e); rect = null; draw(); };
  canvas.onmousemove = e => {
    if (!start) return;
    const [x, y] = at(e);
    rect = { x: Math.min(x, start[0]), y: Math.min(y, start[1]), w: Math.abs(x - start[0]) + 1,
      h: Math.abs(y - start[1]) + 1 };
    draw();
  };
  canvas.onmouseup = () => { start = null; };
  const editor = document.createElement("div");
  editor.className = "editor";
  const prompt = document.createElement("input");
  prompt.type = "text"; prompt.className = "edit-prompt"; prompt.value = shown.prompt || "";
  const strength = document.createElement("input");
  strength.type = "number"; strength.className = "edit-strength"; strength.min = "0.05"; strength.max = "1";
  strength.step = "0.05"; strength.value = "0.6"; strength.title = "strength (image-to-image)";
  const hint = document.createElement("span");
  hint.textContent = "drag a rectangle on the image to repaint only it";
  editor.append(prompt, strength, hint, button("apply", async () => {
    const form = new FormData();
    form.append("image", await pngBlob(src), "image.png");
    if (rect) {
      const mask = document.createElement("canvas");
      mask.width = canvas.width; mask.height = canvas.height;
      const g = mask.getContext("2d");
      g.fillStyle = "#000"; g.fillRect(0, 0, mask.width, mask.height);
      g.clearRect(rect.x, rect.y, rect.w, rect.h);
      form.append("mask", await new Promise(r => mask.toBlob(r, "image/png")), "mask.png");
    } else {
      form.append("strength", strength.value);
    }
    form.append("prompt", prompt.value); form.append("model", shown.model); form.append("n", "1");
    form.append("response_format", "b64_json");
    seedField(form);
    await run("/v1/images/edits", form, { model: shown.model, prompt: prompt.value,
      label: (rect ? "inpainted: " : "edited: ") + prompt.value });
  }));
  card.append(editor);
}

async function generate(ev) {
  ev.preventDefault();
  if ($("key").value) localStorage.setItem("pictor-key", $("key").value);
  const body = { prompt: $("prompt").value, model: $("model").value, n: 1, response_format: "b64_json",
    sampler: $("sampler").value };
  if ($("negative").value) body.negative_prompt = $("negative").value;
  if ($("steps").value && !$("steps").disabled) body.steps = Number($("steps").value);
  if ($("guidance").value) body.guidance = Number($("guidance").value);
  if ($("seed").value) body.seed = Number($("seed").value);
  await run("/v1/images/generations", body, body);
}

$("model").addEventListener("change", chooseModel);
$("form").addEventListener("submit", generate);
loadModels().catch(e => { $("error").textContent = "could not load the models: " + e.message; });
