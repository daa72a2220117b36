// Liaison sandbox page: one pane per officer, live through server-sent events. No external code.
"use strict";

const panes = new Map(); // pane id -> {el, list, messages: Map(message_id -> li), info}

function $(sel, root) { return (root || document).querySelector(sel); }

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function setStatus(text, down) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("down", !!down);
}

function renderBanner(tr) {
  const el = $("#banner");
  if (!tr) { el.hidden = true; return; }
  el.replaceChildren();
  const p = document.createElement("p");
  p.style.margin = "0";
  p.textContent = tr.summary;
  el.appendChild(p);
  if (tr.missing && tr.missing.length) {
    const hint = document.createElement("p");
    hint.style.margin = "4px 0 0";
    hint.append("Messages in a direction without a model arrive untranslated, with the bot's note. Install models with ");
    const code = document.createElement("code");
    code.textContent = tr.install_command;
    hint.append(code, " (see the README, section models), then restart the sandbox.");
    el.appendChild(hint);
  }
  el.dataset.installed = (tr.installed || []).join(" ");
  el.hidden = false;
}

function formatTime(unix) {
  if (!unix) return "";
  const d = new Date(unix * 1000);
  return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

function formatSize(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
  return (n / 1024 / 1024).toFixed(1) + " MB";
}

function showToast(pane, text) {
  const el = $(".toast", pane.el);
  el.textContent = text;
  el.hidden = false;
  clearTimeout(pane.toastTimer);
  pane.toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

function messageItem(pane, m) {
  const li = document.createElement("li");
  li.className = "msg " + (m.from_bot ? "bot" : "me");
  li.dataset.messageId = m.message_id;
  if (m.document) {
    const a = document.createElement("a");
    a.className = "document";
    a.href = "api/files/" + encodeURIComponent(m.document.file_id) + "?name=" + encodeURIComponent(m.document.name);
    a.setAttribute("download", m.document.name);
    const icon = document.createElement("span");
    icon.className = "icon";
    const ext = m.document.name.includes(".") ? m.document.name.split(".").pop() : "file";
    icon.textContent = ext.slice(0, 4).toUpperCase();
    const label = document.createElement("span");
    label.className = "file-name";
    label.textContent = m.document.name;
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = " " + formatSize(m.document.size);
    label.appendChild(size);
    a.append(icon, label);
    li.appendChild(a);
  }
  if (m.html) {
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.lang = m.lang;
    // The server rebuilt this HTML keeping only Telegram's tags (bot/sandbox/web_render.py).
    bubble.innerHTML = m.html;
    li.appendChild(bubble);
  }
  if (m.keyboard && m.keyboard.length) {
    const kb = document.createElement("div");
    kb.className = "keyboard";
    for (const row of m.keyboard) {
      const r = document.createElement("div");
      r.className = "row";
      for (const b of row) {
        let el;
        if (b.url) {
          el = document.createElement("a");
          el.href = b.url;
          el.target = "_blank";
          el.rel = "noopener noreferrer";
        } else {
          el = document.createElement("button");
          el.type = "button";
          el.disabled = b.data == null;
          el.addEventListener("click", () => press(pane, m.message_id, b.data, el));
        }
        el.textContent = b.text;
        r.appendChild(el);
      }
      kb.appendChild(r);
    }
    li.appendChild(kb);
  }
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = (m.edited ? "edited " : "") + formatTime(m.date) + " ";
  const reply = document.createElement("button");
  reply.type = "button";
  reply.className = "reply";
  reply.textContent = "reply";
  reply.title = "Answer this message with Telegram's reply";
  reply.addEventListener("click", () => startReply(pane, m.message_id));
  meta.appendChild(reply);
  li.appendChild(meta);
  if (m.reply_to) {
    const ref = document.createElement("div");
    ref.className = "reply-ref";
    ref.textContent = "↪ " + snippet(pane, m.reply_to);
    li.insertBefore(ref, li.firstChild);
  }
  return li;
}

function snippet(pane, messageId) {
  const target = pane.messages.get(messageId);
  const text = target ? (($(".bubble", target) || $(".file-name", target) || target).textContent || "") : "";
  const flat = text.replace(/\s+/g, " ").trim();
  return flat ? (flat.length > 60 ? flat.slice(0, 60) + "…" : flat) : "message " + messageId;
}

function startReply(pane, messageId) {
  pane.replyTo = messageId;
  const bar = $(".replying", pane.el);
  $(".replying-text", bar).textContent = "Reply to: " + snippet(pane, messageId);
  bar.hidden = false;
  $("textarea", pane.el).focus();
}

function endReply(pane) {
  pane.replyTo = null;
  $(".replying", pane.el).hidden = true;
}

function upsert(pane, m) {
  const old = pane.messages.get(m.message_id);
  if (m.deleted) { if (old) old.remove(); pane.messages.delete(m.message_id); return; }
  const li = messageItem(pane, m);
  if (old) { old.replaceWith(li); } else {
    const empty = $(".empty", pane.list);
    if (empty) empty.remove();
    // Keep the order of message ids (events may overtake the first snapshot).
    let before = null;
    for (const [id, el] of pane.messages) if (id > m.message_id && (!before || id < +before.dataset.messageId)) before = el;
    pane.list.insertBefore(li, before);
  }
  pane.messages.set(m.message_id, li);
  const nearBottom = pane.list.scrollHeight - pane.list.scrollTop - pane.list.clientHeight < 160;
  if (nearBottom || !old) pane.list.scrollTop = pane.list.scrollHeight;
}

async function press(pane, messageId, data, button) {
  button.disabled = true;
  try {
    await api("api/panes/" + pane.info.id + "/press", {message_id: messageId, data: data});
  } catch (e) {
    showToast(pane, "⚠ " + e.message);
  } finally {
    button.disabled = false;
  }
}

function buildPane(info) {
  const el = $("#pane-template").content.firstElementChild.cloneNode(true);
  el.dataset.pane = info.id;
  el.dataset.lang = info.lang;
  el.id = "pane-" + info.key;
  $(".flag", el).textContent = info.flag || "";
  $(".country", el).textContent = info.country || "";
  $(".name", el).textContent = info.name;
  $(".role", el).textContent = info.subtitle || "";
  $(".lang-tag", el).textContent = info.lang || "";
  const textarea = $("textarea", el);
  textarea.lang = info.lang || "";
  textarea.placeholder = info.placeholder || "Message";
  const pane = {el, list: $(".messages", el), messages: new Map(), info, replyTo: null};
  const empty = document.createElement("li");
  empty.className = "empty";
  empty.textContent = "No messages yet.";
  pane.list.appendChild(empty);
  const form = $(".compose", el);
  const send = async (ev) => {
    if (ev) ev.preventDefault();
    const text = textarea.value.trim();
    if (!text) return;
    textarea.value = "";
    const body = {text};
    if (pane.replyTo) body.reply_to = pane.replyTo;
    try {
      const res = await api("api/panes/" + info.id + "/send", body);
      endReply(pane);
      if (res.message) upsert(pane, res.message);
    } catch (e) {
      textarea.value = text;
      showToast(pane, "⚠ " + e.message);
    }
  };
  $(".cancel-reply", el).addEventListener("click", () => endReply(pane));
  const fileInput = $(".file-input", el);
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    const caption = textarea.value.trim();
    if (caption) form.append("caption", caption);
    if (pane.replyTo) form.append("reply_to", pane.replyTo);
    try {
      const res = await fetch("api/panes/" + info.id + "/upload", {
        method: "POST", body: form, headers: {"X-Sandbox": "1"},
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.error || res.statusText);
      textarea.value = "";
      endReply(pane);
      if (data.message) upsert(pane, data.message);
    } catch (e) {
      showToast(pane, "⚠ " + e.message);
    } finally {
      fileInput.value = "";
    }
  });
  form.addEventListener("submit", send);
  textarea.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) send(ev);
  });
  pane.list.addEventListener("click", (ev) => {
    const quote = ev.target.closest("blockquote.expandable");
    if (quote) quote.classList.toggle("open");
    const spoiler = ev.target.closest(".tg-spoiler");
    if (spoiler) spoiler.classList.add("shown");
  });
  return pane;
}

async function loadState() {
  const state = await api("api/state");
  renderBanner(state.translation);
  const root = $("#panes");
  const ids = state.panes.map((p) => p.id);
  for (const [id, pane] of panes) if (!ids.includes(id)) { pane.el.remove(); panes.delete(id); }
  for (const info of state.panes) {
    let pane = panes.get(info.id);
    if (!pane) { pane = buildPane(info); panes.set(info.id, pane); }
    root.appendChild(pane.el); // keeps the server's order
    for (const m of state.messages[info.id] || []) upsert(pane, m);
  }
  if (!state.panes.length) setStatus("No officers yet: the demo is still being prepared…");
}

function handleEvent(ev) {
  const pane = panes.get(ev.pane);
  if (ev.type === "panes") { loadState().catch(() => {}); return; }
  if (!pane) return;
  if (ev.type === "message") upsert(pane, ev.message);
  else if (ev.type === "toast") showToast(pane, ev.text);
}

function connect() {
  const source = new EventSource("api/events");
  source.addEventListener("hello", async () => {
    try {
      await loadState();
      setStatus("live — connected to the bot");
      document.body.dataset.ready = "1";
    } catch (e) { setStatus("could not load the chats: " + e.message, true); }
  });
  source.addEventListener("update", (e) => handleEvent(JSON.parse(e.data)));
  source.onerror = () => setStatus("connection lost, reconnecting…", true);
}

connect();
