// One run: state, status and ETA, exit code, state timeline per attempt, and the live log.

import { coalesce, follow, get, post, streamLog } from "../api.js";
import { append, clear, duration, h, say, stateBadge, table, when } from "../dom.js";

const ENDED = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost"]);
const KEEP = 2 * 1024 * 1024; // characters of log kept in the page

export async function render(main, { args }) {
  const id = args[0];
  let run = await get(`/v1/runs/${encodeURIComponent(id)}`);
  const job = await get(`/v1/jobs/${run.job_id}`).catch(() => null);
  const head = h("div.page-head");
  const props = h("div");
  const timeline = h("div");
  const pre = h("pre.log", { tabindex: "0", "aria-label": "Run log", "aria-live": "off" });
  const logState = h("span.muted");
  const stick = h("input", { type: "checkbox", id: "stick", checked: true });
  const cancel = h("button.danger", { type: "button" }, "Cancel run");
  cancel.addEventListener("click", async () => {
    try {
      run = await post(`/v1/runs/${id}/cancel`);
      show();
    } catch (err) {
      say(err.message, "error");
    }
  });

  function show() {
    append(clear(head), [h("h1", "Run ", h("code", id.slice(-10))), stateBadge(run.state), ENDED.has(run.state) ? null : cancel]);
    head.querySelector(".badge").dataset.runState = run.state;
    const took = run.started_at ? ((run.finished_at ? Date.parse(run.finished_at) : Date.now()) - Date.parse(run.started_at)) / 1000 : null;
    clear(props).append(h("dl.props",
      h("dt", "Job"), h("dd", h("a", { href: `#/jobs/${run.job_id}` }, job ? job.name : run.job_id)),
      h("dt", "Executor"), h("dd", run.executor),
      h("dt", "Attempt"), h("dd", `${run.attempt} of ${run.max_attempts}`),
      h("dt", "Status"), h("dd", { dataset: { field: "status" } }, run.status || "—"),
      h("dt", "ETA"), h("dd", run.eta_s != null ? duration(run.eta_s) : "—"),
      h("dt", "Exit code"), h("dd", { dataset: { field: "exit_code" } }, run.exit_code ?? "—"),
      h("dt", "Message"), h("dd", run.message || "—"),
      h("dt", "Created"), h("dd", when(run.created_at)),
      h("dt", "Started"), h("dd", when(run.started_at)),
      h("dt", "Finished"), h("dd", when(run.finished_at)),
      h("dt", "Duration"), h("dd", duration(took)),
      run.schedule_id ? [h("dt", "Slot"), h("dd", when(run.scheduled_for))] : null,
      run.external_id ? [h("dt", "External id"), h("dd", h("code", run.external_id))] : null,
      Object.keys(run.params || {}).length ? [h("dt", "Params"), h("dd", h("code", JSON.stringify(run.params)))] : null));
  }

  async function loadTimeline() {
    const { items } = await get(`/v1/runs/${id}/events`);
    const rows = [];
    let attempt = null;
    let prev = null;
    for (const e of items) {
      if (e.attempt !== attempt) {
        attempt = e.attempt;
        rows.push(h("tr.attempt", h("th", { colspan: 4, scope: "rowgroup" }, `Attempt ${attempt}`)));
      }
      const since = prev ? (Date.parse(e.at) - Date.parse(prev)) / 1000 : null;
      rows.push(h("tr", h("td", stateBadge(e.state)), h("td", when(e.at)), h("td", since == null ? "" : `+${duration(since)}`), h("td", e.status || "")));
      prev = e.at;
    }
    clear(timeline).append(table(["State", "At", "After", "Status"], rows, "No transitions yet."));
  }

  show();
  main.append(head, props,
    h("section", { "aria-labelledby": "h-tl" }, h("h2#h-tl", "Timeline"), timeline),
    h("section", { "aria-labelledby": "h-log" },
      h("div.row.spread", h("h2#h-log", "Log"), h("div.row", logState, h("div.check", stick, h("label", { for: "stick" }, "Follow the end")))), pre));
  await loadTimeline();

  // The log: chunks are gathered and written once per frame, so fast output does not
  // make the page re-lay out per chunk; past KEEP characters the oldest are dropped.
  const abort = new AbortController();
  let pending = "";
  let frame = 0;
  let shown = 0;
  function flush() {
    frame = 0;
    if (!pending) return;
    shown += pending.length;
    pre.append(pending);
    pending = "";
    if (shown > KEEP) {
      const text = pre.textContent;
      pre.textContent = `[… earlier output not shown …]\n${text.slice(text.length - KEEP / 2)}`;
      shown = pre.textContent.length;
    }
    if (stick.checked) pre.scrollTop = pre.scrollHeight;
  }
  pre.addEventListener("scroll", () => {
    stick.checked = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  });
  logState.textContent = ENDED.has(run.state) ? "" : "streaming…";
  pre.dataset.done = "false";
  streamLog(id, (text) => {
    pending += text;
    if (!frame) frame = requestAnimationFrame(flush);
  }, abort.signal)
    .then(() => {
      flush();
      logState.textContent = "log complete";
      pre.dataset.done = "true";
    })
    .catch((err) => {
      if (err.name !== "AbortError") logState.textContent = `log: ${err.message}`;
    });

  const stop = follow({ run: id }, coalesce(async () => {
    run = await get(`/v1/runs/${id}`);
    show();
    await loadTimeline();
  }));
  return () => {
    stop();
    abort.abort();
    cancelAnimationFrame(frame);
  };
}
