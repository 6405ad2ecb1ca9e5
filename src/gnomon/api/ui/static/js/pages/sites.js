// Sites: each site's queue, its agents and when each was last seen, and its reservations as
// a week calendar (create, delete).

import { ApiError, coalesce, del, follow, get, post, query } from "../api.js";
import { ago, append, clear, confirmDialog, field, h, say, table, when } from "../dom.js";
import { RUN_HEADERS, runRow } from "./runs.js";

const DAY = 86400e3;

/** Who holds a reservation; another space's shows only its window. */
const holder = (r) => r.owner_name || r.owner || "another space";

async function siteList() {
  try {
    return { items: (await get("/v1/sites")).items, native: true };
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    const st = await get("/v1/stats");
    return { items: st.sites.map((x) => ({ site: x.site, queued: x.queued, running: x.active, agents: [] })), native: false };
  }
}

async function renderList(main) {
  const { items } = await siteList();
  main.append(h("h1", "Sites"),
    table(["Site", "Waiting", "Claimed", "Running", "Agents", "Last contact", "Held by"], items.map((x) => h("tr",
      h("td", h("a", { href: `#/sites/${encodeURIComponent(x.site)}` }, x.site)),
      h("td.num", String(x.queued ?? 0)), h("td.num", String(x.claimed ?? 0)), h("td.num", String(x.running ?? 0)),
      h("td.num", String(x.agents.length)), h("td", ago(x.last_contact_at ?? null)),
      h("td", x.reservation ? `${holder(x.reservation)} until ${when(x.reservation.end_at)}` : "—"))),
    "No sites yet: a site appears when a job names executor site:<name> or an agent polls it."));
}

function weekStart(t) {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d.getTime();
}

function localInput(t) {
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

/** Seven day rows of 24 hours, reservations drawn as bars on them (local time). */
function calendar(start, items, onDelete) {
  const rows = [];
  for (let i = 0; i < 7; i++) {
    const a = start + i * DAY;
    const z = a + DAY;
    const track = h("div.track", { role: "list", "aria-label": new Date(a).toDateString() });
    for (const r of items) {
      const ra = Date.parse(r.start_at);
      const rz = Date.parse(r.end_at);
      if (rz <= a || ra >= z) continue;
      const left = ((Math.max(ra, a) - a) / DAY) * 100;
      const width = Math.max(0.8, ((Math.min(rz, z) - Math.max(ra, a)) / DAY) * 100);
      const label = `${holder(r)}: ${when(r.start_at)} – ${when(r.end_at)}${r.note ? ` (${r.note})` : ""}`;
      const bar = h("button.resv", { type: "button", role: "listitem", title: label, "aria-label": `Reservation ${label}. Delete`, dataset: { reservation: r.id } }, r.note || r.owner_name || "reserved");
      bar.style.left = `${left}%`;
      bar.style.width = `${width}%`;
      bar.addEventListener("click", () => onDelete(r));
      track.append(bar);
    }
    rows.push(h("div.day", h("div.dlabel", new Date(a).toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" })), track));
  }
  const hours = h("div.day.hours", h("div.dlabel", ""), h("div.track.scale", [0, 6, 12, 18].map((x) => {
    const mark = h("span", `${String(x).padStart(2, "0")}:00`);
    mark.style.left = `${(x / 24) * 100}%`;
    return mark;
  })));
  return h("div.calendar", hours, rows);
}

export async function render(main, { args }) {
  if (!args.length) return renderList(main);
  const site = args[0];
  const detail = await get(`/v1/sites/${encodeURIComponent(site)}`).catch((err) => {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  });
  const queue = h("div");
  const agents = h("div");
  const cal = h("div");
  const list = h("div");
  let week = weekStart(Date.now());
  const held = detail && detail.reservation;
  append(main, [h("h1", "Site ", site),
    held ? h("p", `Reserved by ${holder(held)} until ${when(held.end_at)}${held.note ? ` (${held.note})` : ""}.`) : null,
    h("div.grid2",
      h("section", { "aria-labelledby": "h-agents" }, h("h2#h-agents", "Agents"), agents),
      h("section", { "aria-labelledby": "h-queue" }, h("h2#h-queue", "Queue"), queue))]);

  const items = detail ? detail.agents || [] : [];
  const agentRow = (a) => {
    const seen = a.last_contact_at;
    return h("tr", h("td", a.id), h("td", h("time", { datetime: seen }, ago(seen))),
      h("td", when(a.first_seen_at)), h("td.num", String(a.claimed ?? "")));
  };
  agents.append(detail
    ? table(["Agent", "Last seen", "First seen", "Runs claimed"], items.map(agentRow), "No agent has polled this site yet.")
    : h("p.muted", "This server does not report site agents."));

  const loadQueue = coalesce(async () => {
    const page = await get(`/v1/runs${query({ site, state: "pending,queued,claimed,running", limit: 50 })}`);
    clear(queue).append(table(RUN_HEADERS, page.items.map(runRow), "Nothing queued or running."));
  });
  await loadQueue();

  // Reservations.
  const base = `/v1/sites/${encodeURIComponent(site)}/reservations`;
  const now = Date.now() + 3600e3 - (Date.now() % 3600e3);
  const start = h("input", { name: "start", type: "datetime-local", required: true, value: localInput(now) });
  const end = h("input", { name: "end", type: "datetime-local", required: true, value: localInput(now + 2 * 3600e3) });
  const note = h("input", { name: "note", maxlength: 500 });
  const form = h("form.card", { "aria-labelledby": "h-newres" }, h("h3#h-newres", "Reserve"),
    h("div.grid3", field("From", start), field("To", end), field("Note", note)), h("button.primary", { type: "submit" }, "Reserve"));
  const prev = h("button", { type: "button", "aria-label": "Previous week" }, "←");
  const next = h("button", { type: "button", "aria-label": "Next week" }, "→");
  const label = h("span");
  let reservations = [];
  let supported = true;

  async function remove(r) {
    if (!(await confirmDialog(`Delete the reservation ${when(r.start_at)} – ${when(r.end_at)}?`))) return;
    try {
      await del(`${base}/${r.id}`);
      say("Reservation deleted.");
      await loadReservations();
    } catch (err) {
      say(err.message, "error");
    }
  }
  function draw() {
    label.textContent = `Week of ${new Date(week).toLocaleDateString()}`;
    clear(cal).append(calendar(week, reservations, remove));
    clear(list).append(table(["From", "To", "Held by", "Note", ""], reservations.map((r) => {
      const b = h("button.danger", { type: "button" }, "Delete");
      b.addEventListener("click", () => remove(r));
      return h("tr", { dataset: { reservation: r.id } }, h("td", when(r.start_at)), h("td", when(r.end_at)), h("td", holder(r)), h("td", r.note || ""), h("td", b));
    }), "No reservations."));
  }
  async function loadReservations() {
    try {
      const res = await get(base);
      reservations = res.items;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && !detail) {
        supported = false;
        clear(cal).append(h("p.muted", "This server does not keep reservations."));
        return;
      }
      throw err;
    }
    draw();
  }
  prev.addEventListener("click", () => { week -= 7 * DAY; draw(); });
  next.addEventListener("click", () => { week += 7 * DAY; draw(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const body = { start_at: new Date(start.value).toISOString(), end_at: new Date(end.value).toISOString() };
      if (note.value.trim()) body.note = note.value.trim();
      await post(base, body);
      say("Reserved.");
      week = weekStart(Date.parse(body.start_at));
      await loadReservations();
    } catch (err) {
      say(err.message, "error");
    }
  });
  main.append(h("section", { "aria-labelledby": "h-res" }, h("h2#h-res", "Reservations"), h("div.row", prev, label, next), cal, list, form));
  await loadReservations();
  if (!supported) form.remove();
  const stop = follow({ site }, loadQueue);
  return stop;
}
