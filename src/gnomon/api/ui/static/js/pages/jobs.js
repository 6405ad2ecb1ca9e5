// Jobs: search, filters, paging, and a form to create one.

import { get, post, query } from "../api.js";
import { clear, field, h, parseJson, say, table, when } from "../dom.js";

export function actionFrom(type, main, extra) {
  if (type === "shell") return { type, command: main };
  if (type === "http") return { type, method: "GET", url: main };
  if (type === "task") return { type, name: main, params: extra };
  return { type: "noop" };
}

export function actionSummary(a) {
  if (a.type === "shell") return `$ ${Array.isArray(a.command) ? a.command.join(" ") : a.command}`;
  if (a.type === "http") return `${a.method || "GET"} ${a.url}`;
  if (a.type === "task") return `task ${a.name}`;
  return a.type;
}

export async function render(main, { params }) {
  const q = h("input", { type: "search", name: "q", value: params.q || "", placeholder: "name contains…" });
  const executor = h("input", { name: "executor", value: params.executor || "", placeholder: "local, site:…", list: "executors" });
  const space = h("select", { name: "space" }, h("option", { value: "" }, "all spaces"));
  const results = h("div");
  const more = h("button", { type: "button", hidden: true }, "More");
  const filters = h("form.filters", { role: "search", "aria-label": "Filter jobs" },
    field("Search", q), field("Executor", executor), field("Space", space), h("button", { type: "submit" }, "Filter"));

  const name = h("input", { name: "name", required: true, maxlength: 200, pattern: "[A-Za-z0-9][A-Za-z0-9 _.:@/\\-]*" });
  const type = h("select", { name: "type" }, ["shell", "http", "task", "noop"].map((t) => h("option", { value: t }, t)));
  const what = h("input", { name: "what", placeholder: "echo hello" });
  const exec = h("input", { name: "executor", value: "local", list: "executors" });
  const timeout = h("input", { name: "timeout_s", type: "number", min: "0", step: "any", placeholder: "none" });
  const newSpace = h("select", { name: "space" });
  const jobParams = h("textarea", { name: "params", rows: 2, placeholder: "{}" });
  const create = h("form.card", { "aria-labelledby": "h-new" },
    h("h2#h-new", "New job"),
    h("div.grid3", field("Name", name), field("Action", type), field("Command / URL / task", what)),
    h("div.grid3", field("Executor", exec, "local, celery, slurm or site:<name>"), field("Timeout (s)", timeout), field("Space", newSpace)),
    field("Default params (JSON)", jobParams),
    h("button.primary", { type: "submit" }, "Create job"));
  type.addEventListener("change", () => {
    what.placeholder = { shell: "echo hello", http: "https://example.org/hook", task: "expose", noop: "" }[type.value];
    what.disabled = type.value === "noop";
  });

  main.append(h("h1", "Jobs"), filters, results, more, h("datalist#executors", ["local", "celery", "slurm"].map((v) => h("option", { value: v }))), create);

  try {
    const spaces = await get("/v1/spaces");
    for (const sp of spaces.items) {
      space.append(h("option", { value: sp.name, selected: params.space === sp.name }, sp.name));
      newSpace.append(h("option", { value: sp.name, selected: sp.name === "default" }, sp.name));
    }
  } catch (e) {
    say(`spaces: ${e.message}`, "error");
  }

  let cursor = null;
  async function load(reset) {
    if (reset) {
      cursor = null;
      clear(results);
    }
    const page = await get(`/v1/jobs${query({ q: q.value.trim(), executor: executor.value.trim(), space: space.value, cursor, limit: 50 })}`);
    const rows = page.items.map((j) => h("tr",
      h("td", h("a", { href: `#/jobs/${j.id}` }, j.name)), h("td.clip", h("code", actionSummary(j.action))),
      h("td", j.executor), h("td", j.space), h("td", when(j.created_at))));
    const existing = results.querySelector("tbody");
    if (existing && !reset) existing.append(...rows);
    else results.append(table(["Name", "Action", "Executor", "Space", "Created"], rows, "No jobs match."));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/jobs${query({ q: q.value.trim(), executor: executor.value.trim(), space: space.value })}`;
  });
  more.addEventListener("click", () => load(false).catch((e) => say(e.message, "error")));
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const body = { name: name.value.trim(), action: actionFrom(type.value, what.value, {}), executor: exec.value.trim() || "local", params: parseJson(jobParams.value, "params") };
      if (timeout.value) body.timeout_s = Number(timeout.value);
      if (newSpace.value) body.space = newSpace.value;
      const made = await post("/v1/jobs", body);
      say(`Job ${made.name} created.`);
      location.hash = `#/jobs/${made.id}`;
    } catch (err) {
      say(err.message, "error");
    }
  });
  await load(true);
}
