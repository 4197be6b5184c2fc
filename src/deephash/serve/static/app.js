// deephash image search page: no framework, no network access beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { k: 12 };

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
}

// The server's token (when it has one) lives in this tab's session storage only: it is asked for
// on the first 401 and sent as "Authorization: Bearer <token>" with every call and image.
const TOKEN_KEY = "deephash-token";

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function call(path, options) {
  const opts = options || {};
  const response = await fetch(path, { ...opts, headers: { ...(opts.headers || {}), ...authHeaders() } });
  const body = await response.json().catch(() => ({ error: "bad_response", detail: response.statusText }));
  if (!response.ok) {
    const error = new Error(body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : body.error);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function api(path, options) {
  try {
    return await call(path, options);
  } catch (e) {
    if (e.status !== 401) throw e;
    sessionStorage.removeItem(TOKEN_KEY);
    const token = window.prompt(`This server needs its token: ${e.message}`);
    if (!token) throw e;
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    return await call(path, options);
  }
}

// <img src> cannot send a header: with a token, images are fetched and shown from a blob.
async function loadImage(img, url) {
  const headers = authHeaders();
  if (!headers.Authorization || url.startsWith("blob:")) {
    img.src = url;
    return;
  }
  const response = await fetch(url, { headers });
  if (response.ok) img.src = URL.createObjectURL(await response.blob());
}

async function refreshStats() {
  try {
    const s = await api("/stats");
    $("count").textContent = s.count.toLocaleString();
    $("bits").textContent = s.bits;
    $("backend").textContent = s.backend;
    $("ranking").textContent = !s.rerank
      ? "ranked by Hamming distance"
      : s.rerank.descriptor_candidates
        ? `ranked by ${s.rerank.descriptor} bits (${s.rerank.candidates} nearest codes + ` +
          `${s.rerank.descriptor_candidates} nearest descriptors)`
        : `re-ranked by ${s.rerank.descriptor} descriptors (${s.rerank.candidates} candidates)`;
  } catch (e) {
    setStatus("cannot reach the server: " + e.message, true);
  }
}

function k() {
  const v = parseInt($("k-input").value, 10);
  return Number.isFinite(v) && v > 0 ? v : state.k;
}

function showQuery(src, caption) {
  $("query-figure").hidden = false;
  loadImage($("query-image"), src);
  $("query-caption").textContent = caption;
}

function renderResults(body) {
  const grid = $("results");
  grid.replaceChildren();
  $("query-time").textContent = `(${body.results.length} in ${body.query_ms.toFixed(1)} ms)`;
  for (const hit of body.results) {
    const card = document.createElement("div");
    card.className = "result";
    card.dataset.id = hit.id;
    card.title = hit.path || "";
    const img = document.createElement("img");
    loadImage(img, hit.image_url);
    img.alt = `item ${hit.id}`;
    img.loading = "lazy";
    const meta = document.createElement("div");
    meta.className = "meta";
    const dist = document.createElement("span");
    dist.className = "distance";
    dist.textContent = `d=${hit.distance}`;
    dist.title = "Hamming distance of the codes";
    meta.append(dist);
    if (hit.score !== null && hit.score !== undefined) {
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `s=${hit.score.toFixed(3)}`;
      score.title = "re-rank score: cosine similarity of the descriptors (1 = the same image)";
      meta.append(" · ", score);
    }
    meta.append(` · #${hit.id}`);
    if (hit.label !== undefined) {
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = hit.label;
      meta.append(label);
    }
    card.append(img, meta);
    card.addEventListener("click", () => searchById(hit.id, hit.image_url, hit.label));
    grid.append(card);
  }
}

async function searchFile(file) {
  setStatus("searching…");
  showQuery(URL.createObjectURL(file), file.name);
  const form = new FormData();
  form.append("image", file, file.name);
  try {
    renderResults(await api(`/search?k=${k()}`, { method: "POST", body: form }));
    setStatus("");
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function searchById(id, imageUrl, label) {
  setStatus("searching…");
  showQuery(imageUrl || `/items/${id}/image`, `item #${id}` + (label !== undefined ? ` · ${label}` : ""));
  try {
    renderResults(await api("/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: id, k: k() }),
    }));
    setStatus("");
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function randomItem() {
  try {
    const item = await api("/items/random");
    await searchById(item.id, item.image_url, item.label);
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function addImages(event) {
  event.preventDefault();
  const files = $("add-files").files;
  const status = $("add-status");
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("image", f, f.name);
  const label = $("add-label").value.trim();
  if (label) form.append("label", label);
  status.className = "";
  status.textContent = `adding ${files.length}…`;
  try {
    const body = await api("/items", { method: "POST", body: form });
    status.textContent = `added ${body.ids.length}: ids ${body.ids.join(", ")}`;
    $("add-form").reset();
    refreshStats();
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
  }
}

function setupDrop() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) searchFile(e.dataTransfer.files[0]);
  });
}

$("file-input").addEventListener("change", (e) => {
  if (e.target.files.length) searchFile(e.target.files[0]);
});
$("random-button").addEventListener("click", randomItem);
$("add-form").addEventListener("submit", addImages);
setupDrop();
refreshStats();
