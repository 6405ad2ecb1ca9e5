// One job: definition, run now, edit, delete, schedules with their next fire times, history.

import { del, get, patch, post } from "../api.js";
import { clear, confirmDialog, field, h, jsonText, parseJson, say, table, when } from "../dom.js";
import { actionSummary } from "./jobs.js";
import { runTable } from "./runs.js";

export async function render(main, { args }) {
  const id = args[0];
  let job = await get(`/v1/jobs/${encodeURIComponent(id)}`);
  const title = h("h1", job.name);
  const def = h("div");
  const history = runTable({ job: id });
  const schedules = h("div");

  function showDefinition() {
    title.textContent = job.name;
    clear(def).append(h("dl.props",
      h("dt", "Action"), h("dd", h("code", actionSummary(job.action))),
      h("dt", "Executor"), h("dd", job.executor),
      h("dt", "Space"), h("dd", job.space),
      h("dt", "Timeout"), h("dd", job.timeout_s ? `${job.timeout_s} s` : "none"),
      h("dt", "Retry"), h("dd", h("code", JSON.stringify(job.retry))),
      h("dt", "Concurrency"), h("dd", h("code", JSON.stringify(job.concurrency))),
      h("dt", "Params"), h("dd", h("code", JSON.stringify(job.params))),
      job.app_id ? [h("dt", "App"), h("dd", h("code", job.app_id))] : null,
      Object.keys(job.labels || {}).length ? [h("dt", "Labels"), h("dd", h("code", JSON.stringify(job.labels)))] : null,
      h("dt", "Id"), h("dd", h("code", job.id))));
  }
  showDefinition();

  // Run now, with parameter overrides.
  const overrides = h("textarea", { name: "params", rows: 2, placeholder: "{}" });
  const runForm = h("form.card", { "aria-labelledby": "h-run" }, h("h2#h-run", "Run now"),
    field("Parameter overrides (JSON)", overrides), h("button.primary", { type: "submit" }, "Run now"));
  runForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const p = parseJson(overrides.value, "params", null);
      const r = await post(`/v1/jobs/${id}/runs`, p ? { params: p } : {});
      say(`Run ${r.id} queued.`);
      location.hash = `#/runs/${r.id}`;
    } catch (err) {
      say(err.message, "error");
    }
  });

  // Edit.
  const eName = h("input", { name: "name", value: job.name, required: true });
  const eExec = h("input", { name: "executor", value: job.executor });
  const eTimeout = h("input", { name: "timeout_s", type: "number", min: "0", step: "any", value: job.timeout_s ?? "" });
  const eAction = h("textarea", { name: "action", rows: 4, value: jsonText(job.action) });
  const eParams = h("textarea", { name: "params", rows: 2, value: jsonText(job.params) });
  const editForm = h("form", field("Name", eName), field("Executor", eExec), field("Timeout (s)", eTimeout), field("Action (JSON)", eAction), field("Default params (JSON)", eParams),
    h("div.row", h("button.primary", { type: "submit" }, "Save")));
  const edit = h("details.card", h("summary", "Edit"), editForm);
  editForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const body = { name: eName.value.trim(), executor: eExec.value.trim(), action: parseJson(eAction.value, "action"), params: parseJson(eParams.value, "params") };
      if (eTimeout.value) body.timeout_s = Number(eTimeout.value);
      job = await patch(`/v1/jobs/${id}`, body);
      showDefinition();
      edit.open = false;
      say("Saved.");
    } catch (err) {
      say(err.message, "error");
    }
  });

  const remove = h("button.danger", { type: "button" }, "Delete job");
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete job ${job.name} and its schedules? Its runs stay in the ledger.`))) return;
    try {
      await del(`/v1/jobs/${id}`);
      say(`Job ${job.name} deleted.`);
      location.hash = "#/jobs";
    } catch (err) {
      say(err.message, "error");
    }
  });

  // Schedules.
  const kind = h("select", { name: "kind" }, h("option", { value: "cron" }, "cron"), h("option", { value: "every" }, "every"), h("option", { value: "at" }, "at"));
  const expr = h("input", { name: "expr", required: true, placeholder: "*/5 * * * *" });
  const zone = h("input", { name: "timezone", value: "UTC", list: "zones" });
  const addForm = h("form.card", { "aria-labelledby": "h-addsch" }, h("h3#h-addsch", "Add a schedule"),
    h("div.grid3", field("Kind", kind), field("When", expr, "cron: 5 or 6 fields or @daily; every: 30s, 5m, 1h; at: an RFC 3339 time"), field("Time zone", zone)),
    h("button.primary", { type: "submit" }, "Add schedule"));
  kind.addEventListener("change", () => {
    expr.placeholder = { cron: "*/5 * * * *", every: "5m", at: new Date(Date.now() + 3600e3).toISOString() }[kind.value];
  });
  addForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await post(`/v1/jobs/${id}/schedules`, { [kind.value]: expr.value.trim(), timezone: zone.value.trim() || "UTC" });
      expr.value = "";
      say("Schedule added.");
      await loadSchedules();
    } catch (err) {
      say(err.message, "error");
    }
  });

  async function scheduleCard(sc) {
    const next = await get(`/v1/schedules/${sc.id}/next?n=10`).catch((e) => ({ times: [], error: e.message }));
    const toggle = h("button", { type: "button" }, sc.enabled ? "Pause" : "Resume");
    toggle.addEventListener("click", async () => {
      try {
        await patch(`/v1/schedules/${sc.id}`, { enabled: !sc.enabled });
        say(sc.enabled ? "Schedule paused." : "Schedule resumed.");
        await loadSchedules();
      } catch (err) {
        say(err.message, "error");
      }
    });
    const drop = h("button.danger", { type: "button" }, "Delete");
    drop.addEventListener("click", async () => {
      if (!(await confirmDialog("Delete this schedule?"))) return;
      try {
        await del(`/v1/schedules/${sc.id}`);
        await loadSchedules();
      } catch (err) {
        say(err.message, "error");
      }
    });
    const trigger = sc.cron ? `cron ${sc.cron}` : sc.every ? `every ${sc.every}` : `at ${sc.at}`;
    return h("article.card.schedule", { dataset: { schedule: sc.id } },
      h("div.row.spread", h("h3", trigger, " ", h("span.muted", `(${sc.timezone})`)), h("span", { class: `badge ${sc.enabled ? "on" : "off"}` }, sc.enabled ? "enabled" : "paused")),
      h("p.muted", `overlap ${sc.overlap}, catch-up window ${sc.catchup_window_s} s, last fired ${when(sc.last_fire_at, sc.timezone)}`),
      next.error ? h("p.error", next.error) : h("div", h("h4", `Next ${next.times.length} fire times (${next.timezone || sc.timezone})`),
        next.times.length ? h("ol.fires", next.times.map((t) => h("li", h("time", { datetime: t }, when(t, sc.timezone))))) : h("p.muted", "No upcoming fire times.")),
      h("div.row", toggle, drop));
  }
  async function loadSchedules() {
    const page = await get(`/v1/jobs/${id}/schedules`);
    const cards = await Promise.all(page.items.map(scheduleCard));
    clear(schedules).append(...(cards.length ? cards : [h("p.muted", "No schedules.")]));
  }

  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  main.append(
    h("div.page-head", title, remove),
    def,
    h("div.grid2", runForm, edit),
    h("section", { "aria-labelledby": "h-sch" }, h("h2#h-sch", "Schedules"), schedules, addForm),
    h("datalist#zones", ["UTC", ...zones].map((z) => h("option", { value: z }))),
    h("section", { "aria-labelledby": "h-hist" }, h("h2#h-hist", "Run history"), history),
  );
  await Promise.all([loadSchedules(), history.reload()]);
}
