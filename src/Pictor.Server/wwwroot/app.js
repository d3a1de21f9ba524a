// Pictor's web page: the OpenAI-compatible API of this server, progress from its server-sent events. No libraries.
"use strict";
const $ = id => document.getElementById(id);
const samplers = { diffusion: ["dpm++", "ddim", "ddpm"], dalle: ["dalle"] };
let models = [];

function headers() {
  const h = { "Content-Type": "application/json" };
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

function addToGallery(item, body) {
  const card = document.createElement("div");
  card.className = "card";
  const src = "data:image/png;base64," + item.b64_json;
  const img = new Image(); img.src = src; img.alt = body.prompt;
  const text = document.createElement("p");
  text.textContent = `${body.prompt} (seed ${item.seed})`;
  const link = document.createElement("a");
  link.href = src; link.download = `pictor-${item.seed}.png`; link.textContent = "download PNG";
  card.append(img, text, link);
  $("gallery").prepend(card);
}

async function generate(ev) {
  ev.preventDefault();
  $("error").textContent = "";
  if ($("key").value) localStorage.setItem("pictor-key", $("key").value);
  const body = { prompt: $("prompt").value, model: $("model").value, n: 1, response_format: "b64_json",
    sampler: $("sampler").value };
  if ($("negative").value) body.negative_prompt = $("negative").value;
  if ($("steps").value && !$("steps").disabled) body.steps = Number($("steps").value);
  if ($("guidance").value) body.guidance = Number($("guidance").value);
  if ($("seed").value) body.seed = Number($("seed").value);
  const job = crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)),
    b => b.toString(16).padStart(2, "0")).join("");
  $("live").hidden = false; $("bar").value = 0; $("generate").disabled = true;
  const events = follow(job);
  try {
    const h = headers(); h["X-Pictor-Job-Id"] = job;
    const r = await fetch("/v1/images/generations", { method: "POST", headers: h, body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    j.data.forEach(item => addToGallery(item, body));
    $("step").textContent = "done";
  } catch (e) {
    $("error").textContent = e.message;
  } finally {
    events.close();
    $("generate").disabled = false;
  }
}

$("model").addEventListener("change", chooseModel);
$("form").addEventListener("submit", generate);
loadModels().catch(e => { $("error").textContent = "could not load the models: " + e.message; });
