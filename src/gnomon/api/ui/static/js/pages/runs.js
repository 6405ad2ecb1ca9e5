// Runs: the ledger, newest first, with filters and paging.

import { get, query } from "../api.js";
import { ago, clear, duration, field, h, stateBadge, table } from "../dom.js";

export function runRow(r) {
  const took = r.started_at && r.finished_at ? (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000 : null;
  return h("tr",
    h("td", h("a", { href: `#/runs/${r.id}` }, r.id.slice(-10))),
    h("td", stateBadge(r.state)),
    h("td", String(r.attempt)),
    h("td", ago(r.created_at)),
    h("td", duration(took)),
    h("td.clip", r.status || r.message || (r.exit_code != null ? `exit ${r.exit_code}` : "")));
}

export const RUN_HEADERS = ["Run", "State", "Attempt", "Created", "Took", "Status"];

/** A paged run table for a query; returns its element. */
export function runTable(filters) {
  const box = h("div");
  const more = h("button", { type: "button", hidden: true }, "Older runs");
  const out = h("div", box, more);
  let cursor = null;
  async function load(reset) {
    const page = await get(`/v1/runs${query({ ...filters, cursor, limit: 20 })}`);
    const rows = page.items.map(runRow);
    const body = box.querySelector("tbody");
    if (body && !reset) body.append(...rows);
    else clear(box).append(table(RUN_HEADERS, rows, "No runs yet."));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load(false));
  out.reload = () => {
    cursor = null;
    return load(true);
  };
  return out;
}

export async function render(main, { params }) {
  const state = h("input", { name: "state", value: params.state || "", placeholder: "failed,lost" });
  const job = h("input", { name: "job", value: params.job || "", placeholder: "job id" });
  const site = h("input", { name: "site", value: params.site || "" });
  const form = h("form.filters", { role: "search", "aria-label": "Filter runs" }, field("States", state), field("Job", job), field("Site", site), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/runs${query({ state: state.value.trim(), job: job.value.trim(), site: site.value.trim() })}`;
  });
  const list = runTable({ state: params.state, job: params.job, site: params.site });
  main.append(h("h1", "Runs"), form, list);
  await list.reload();
}
