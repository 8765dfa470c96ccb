// The console's only script: copy buttons, confirmations, and the playground's stream. Pages work without it.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent.trim();
  const done = () => { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectText(button.dataset.copy));
  } else {
    selectText(button.dataset.copy);
  }
});

function selectText(id) {
  const range = document.createRange();
  range.selectNodeContents(document.getElementById(id));
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  document.execCommand("copy");
}

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// The playground: the browser calls /v1 itself, with the tab's playground key.
(function () {
  const root = document.getElementById("playground");
  if (!root) return;
  const STORE = "ht_playground_key";
  if (root.dataset.newKey) sessionStorage.setItem(STORE, root.dataset.newKey);
  const key = () => sessionStorage.getItem(STORE);
  const state = document.getElementById("pg-key-state");
  if (key()) state.textContent = "Using this tab's playground key " + key().slice(0, 10) + "…" + key().slice(-4) + ".";
  const headers = () => ({ "Authorization": "Bearer " + key(), "Content-Type": "application/json" });
  const fail = async (answer) => {
    let message = answer.status + "";
    try { message += ": " + (await answer.json()).error.message; } catch (e) { /* not JSON */ }
    return message;
  };
  const needKey = (out) => {
    if (key()) return false;
    out.textContent = "Create a playground key first.";
    return true;
  };

  document.getElementById("pg-chat").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("pg-chat-out");
    if (needKey(out)) return;
    const form = new FormData(event.target);
    out.textContent = "";
    const answer = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model: form.get("model"), stream: true, messages: [{ role: "user", content: form.get("message") }] }),
    });
    if (!answer.ok) { out.textContent = await fail(answer); return; }
    const reader = answer.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const chunk = JSON.parse(line.slice(6));
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) out.textContent += delta.content;
      }
    }
    out.dataset.done = "true";
  });

  const show = (holder, element, caption) => {
    const figure = document.createElement("figure");
    figure.appendChild(element);
    const text = document.createElement("figcaption");
    text.textContent = caption;
    figure.appendChild(text);
    holder.prepend(figure);
  };

  document.getElementById("pg-image").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("pg-image-state");
    if (needKey(status)) return;
    const form = new FormData(event.target);
    status.textContent = "Generating…";
    const answer = await fetch("/v1/images/generations", {
      method: "POST", headers: headers(), body: JSON.stringify({ model: form.get("model"), prompt: form.get("prompt") }),
    });
    if (!answer.ok) { status.textContent = await fail(answer); return; }
    const body = await answer.json();
    const image = document.createElement("img");
    image.alt = form.get("prompt");
    image.src = body.data[0].url || "data:image/png;base64," + body.data[0].b64_json;
    show(document.getElementById("pg-image-out"), image, form.get("prompt"));
    status.textContent = "Done: it is in the gallery too.";
  });

  document.getElementById("pg-video").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("pg-video-state");
    if (needKey(status)) return;
    const form = new FormData(event.target);
    status.textContent = "Queued…";
    let answer = await fetch("/v1/videos", {
      method: "POST", headers: headers(), body: JSON.stringify({ model: form.get("model"), prompt: form.get("prompt"), seconds: "4" }),
    });
    if (!answer.ok) { status.textContent = await fail(answer); return; }
    let video = await answer.json();
    while (video.status === "queued" || video.status === "in_progress") {
      status.textContent = video.status.replace("_", " ") + " " + (video.progress || 0) + " %";
      await new Promise((done) => setTimeout(done, 1000));
      answer = await fetch("/v1/videos/" + video.id, { headers: headers() });
      if (!answer.ok) { status.textContent = await fail(answer); return; }
      video = await answer.json();
    }
    if (video.status !== "completed") { status.textContent = "The video " + video.status + "."; return; }
    const content = await fetch("/v1/videos/" + video.id + "/content", { headers: headers() });
    if (!content.ok) { status.textContent = await fail(content); return; }
    const player = document.createElement("video");
    player.controls = true;
    player.src = URL.createObjectURL(await content.blob());
    show(document.getElementById("pg-video-out"), player, form.get("prompt"));
    status.textContent = "Done: it is in the gallery too.";
  });
})();
