// Dashboard: runs by state, throughput and failure rate, recent failures, missed slots, queues.

import { coalesce, follow, get } from "../api.js";
import { throughput } from "../chart.js";
import { ago, clear, h, stateBadge, table, when } from "../dom.js";

const STATES = ["pending", "queued", "claimed", "running", "succeeded", "failed", "timed_out", "cancelled", "lost"];

export async function render(main) {
  const live = h("span.live", { "aria-live": "polite" }, "connecting…");
  const counts = h("div.counts");
  const chart = h("div");
  const failures = h("div");
  const missed = h("div");
  const queues = h("div");
  main.append(
    h("div.page-head", h("h1", "Dashboard"), live),
    h("section", { "aria-labelledby": "h-states" }, h("h2#h-states", "Runs by state"), counts),
    h("div.grid2",
      h("section", { "aria-labelledby": "h-tp" }, h("h2#h-tp", "Last hour"), chart),
      h("section", { "aria-labelledby": "h-q" }, h("h2#h-q", "Queues"), queues)),
    h("div.grid2",
      h("section", { "aria-labelledby": "h-fail" }, h("h2#h-fail", "Recent failures"), failures),
      h("section", { "aria-labelledby": "h-missed" }, h("h2#h-missed", "Missed slots"), missed)),
  );

  // Job names by id, looked up once per job shown (a deleted job keeps its short id).
  const names = new Map();
  async function name(ids) {
    const missing = [...new Set(ids)].filter((id) => !names.has(id));
    await Promise.all(missing.map((id) => get(`/v1/jobs/${id}`)
      .then((job) => names.set(id, job.name), () => names.set(id, id.slice(-8)))));
  }
  const jobLink = (id) => h("a", { href: `#/jobs/${id}`, title: id }, names.get(id) ?? id.slice(-8));

  async function load() {
    const [st, bad] = await Promise.all([
      get("/v1/stats"),
      get("/v1/runs?state=failed,timed_out,lost&limit=8"),
    ]);
    await name([...bad.items.map((r) => r.job_id), ...st.missed.map((m) => m.job_id)]);
    clear(counts).append(...STATES.map((state) =>
      h(`a.count.state-${state}`, { href: `#/runs?state=${state}`, dataset: { state } },
        h("span.n", { dataset: { count: state } }, String(st.runs[state] ?? 0)), h("span.label", state.replace("_", " ")))));
    clear(chart).append(
      h("p.rate", h("strong", String(st.finished)), " finished, ", h("strong", String(st.failed)), " failed — failure rate ",
        h("strong", { dataset: { rate: "" } }, `${(st.failure_rate * 100).toFixed(1)} %`)),
      throughput(st.throughput, st.bucket_s),
    );
    clear(failures).append(table(["Run", "Job", "State", "Finished", "Message"], bad.items.map((r) =>
      h("tr", h("td", h("a", { href: `#/runs/${r.id}` }, r.id.slice(-8))), h("td", jobLink(r.job_id)),
        h("td", stateBadge(r.state)), h("td", ago(r.finished_at)), h("td.clip", r.message || (r.exit_code != null ? `exit ${r.exit_code}` : "")))), "No failures."));
    clear(missed).append(
      h("p.muted", `${st.missed_total} slots missed in all.`),
      table(["Slot", "Slots", "Schedule of job"], st.missed.map((m) =>
        h("tr", h("td", when(m.fire_at)), h("td", String(m.count)), h("td", jobLink(m.job_id)))), "No missed slots."));
    const qrows = [
      ...st.queues.map((q) => h("tr", h("td", q.executor, q.off ? h("span.muted", { title: q.off, dataset: { off: q.executor } }, " (off)") : ""),
        h("td.num", String(q.queued)), h("td.num", String(q.active)))),
      ...st.sites.map((q) => h("tr", h("td", h("a", { href: `#/sites/${encodeURIComponent(q.site)}` }, `site:${q.site}`)), h("td.num", String(q.queued)), h("td.num", String(q.active)))),
    ];
    clear(queues).append(table(["Executor / site", "Waiting", "Active"], qrows, "All queues are empty."));
  }

  await load();
  // Reloads follow bursts of events, at most one per 750 ms and never more than a fifth of
  // the time.
  let cost = 0;
  const refresh = coalesce(async () => {
    const t0 = performance.now();
    try {
      await load();
    } catch (e) {
      live.textContent = `update failed: ${e.message}`;
    }
    cost = performance.now() - t0;
  });
  let timer = null;
  function schedule() {
    if (!timer) timer = setTimeout(() => { timer = null; refresh(); }, Math.max(750, 4 * cost));
  }
  const stop = follow({}, schedule, (state) => { live.textContent = state === "live" ? "● live" : state; live.dataset.state = state; });
  const tick = setInterval(refresh, 30000);
  return () => {
    stop();
    clearTimeout(timer);
    clearInterval(tick);
  };
}
