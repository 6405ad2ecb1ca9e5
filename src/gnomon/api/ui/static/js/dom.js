// Small DOM helpers: element builder, formatting, messages.

/** h('button#id.primary', {onclick}, 'Run') → an element; children may be strings, nodes, arrays. */
export function h(tag, attrs = {}, ...children) {
  const [head, ...classes] = tag.split(".");
  const [name, id] = head.split("#");
  const el = document.createElement(name || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function when(iso, timeZone) {
  if (!iso) return "—";
  const d = new Date(iso);
  const opts = { dateStyle: "medium", timeStyle: "medium" };
  if (timeZone) opts.timeZone = timeZone;
  try {
    return new Intl.DateTimeFormat(undefined, opts).format(d);
  } catch {
    return d.toISOString();
  }
}

export function ago(iso) {
  if (!iso) return "—";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  const f = (n, u) => `${Math.round(n)} ${u} ago`;
  if (Math.abs(s) < 60) return s < 0 ? `in ${Math.round(-s)} s` : f(s, "s");
  if (Math.abs(s) < 3600) return s < 0 ? `in ${Math.round(-s / 60)} min` : f(s / 60, "min");
  if (Math.abs(s) < 86400) return s < 0 ? `in ${Math.round(-s / 3600)} h` : f(s / 3600, "h");
  return when(iso);
}

export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return "—";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function stateBadge(state) {
  return h(`span.badge.state-${state}`, state);
}

/** A message at the top of the page; errors stay until dismissed. */
export function say(text, kind = "info") {
  const box = document.getElementById("messages");
  const close = h("button.link", { type: "button", "aria-label": "Dismiss" }, "×");
  const msg = h(`div.msg.msg-${kind}`, { role: kind === "error" ? "alert" : "status" }, h("span", text), close);
  close.addEventListener("click", () => msg.remove());
  box.append(msg);
  if (kind !== "error") setTimeout(() => msg.remove(), 5000);
  return msg;
}

export function clearMessages() {
  clear(document.getElementById("messages"));
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div.field", h("label", { for: id }, label), input, hint ? h("small.muted", hint) : null);
}

/** Ask before doing something that cannot be undone; resolves true or false. */
export function confirmDialog(text, action = "Delete") {
  return new Promise((resolve) => {
    const yes = h("button.danger", { type: "submit", value: "yes" }, action);
    const no = h("button", { type: "button" }, "Cancel");
    const dlg = h("dialog.confirm", { "aria-label": "Confirm" }, h("form", { method: "dialog" }, h("p", text), h("div.row", yes, no)));
    no.addEventListener("click", () => dlg.close("no"));
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(dlg.returnValue === "yes");
    });
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}

export function table(headers, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p.muted.empty", empty);
  return h("div.table-wrap", h("table", h("thead", h("tr", headers.map((x) => h("th", { scope: "col" }, x)))), h("tbody", rows)));
}

export function jsonText(value) {
  return JSON.stringify(value, null, 2);
}

/** Parse a JSON textarea, naming the field when it is not JSON. */
export function parseJson(text, name, fallback = {}) {
  if (!text.trim()) return fallback;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not valid JSON (${e.message})`);
  }
}
