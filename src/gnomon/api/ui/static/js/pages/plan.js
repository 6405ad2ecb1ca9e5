// One plan: its timeline, verification, revisions and their diff, and dispatch.

import { get, post } from "../api.js";
import { gantt } from "../chart.js";
import { append, clear, field, h, parseJson, say, table, when } from "../dom.js";
import { verdict } from "./plans.js";

function blockRow(b) {
  return h("tr", h("td", b.name), h("td", b.kind), h("td", when(b.t0)), h("td", when(b.t1)));
}

export async function render(main, { args }) {
  const id = args[0];
  const plan = await get(`/v1/plans/${encodeURIComponent(id)}`);
  const v = plan.verification;
  const problems = v.problems || [];

  const verification = h("section", { "aria-labelledby": "h-ver" }, h("h2#h-ver", "Verification"),
    h("p", verdict(plan), ` checks: ${(v.checks || []).join(", ")}`, v.sun_samples ? `; ${v.sun_samples} sun positions sampled` : ""),
    problems.length ? table(["Check", "Block", "At", "Problem"], problems.map((p) => h("tr", h("td", p.check), h("td", p.name ?? String(p.block)), h("td", when(p.at)), h("td", p.message)))) : h("p.muted", "No problems found."));

  // Revisions: the chain up to this plan, and revisions made from it.
  const revs = h("div");
  const diffBox = h("div");
  const children = await get(`/v1/plans?parent=${id}`);
  const chain = [];
  if (plan.parent_id) chain.push(h("li", "Revised from ", h("a", { href: `#/plans/${plan.parent_id}` }, plan.parent_id.slice(-10))));
  for (const c of children.items) chain.push(h("li", "Revision ", h("a", { href: `#/plans/${c.id}` }, `${c.revision} (${c.id.slice(-10)})`), " ", verdict(c)));
  revs.append(chain.length ? h("ul", chain) : h("p.muted", "No other revisions."));
  if (plan.parent_id) {
    try {
      const d = await get(`/v1/plans/${id}/diff`);
      append(diffBox, [h("h3", "Changes from the previous revision"),
        h("p", `${d.added.length} added, ${d.removed.length} removed, ${d.moved.length} moved`),
        d.added.length ? h("details", h("summary", "Added"), table(["Block", "Kind", "From", "To"], d.added.map(blockRow))) : null,
        d.removed.length ? h("details", h("summary", "Removed"), table(["Block", "Kind", "From", "To"], d.removed.map(blockRow))) : null,
        d.moved.length ? h("details", h("summary", "Moved"), table(["Block", "From", "To"], d.moved.map((m) => h("tr", h("td", m.to.name), h("td", `${when(m.from.t0)} – ${when(m.from.t1)}`), h("td", `${when(m.to.t0)} – ${when(m.to.t1)}`))))) : null]);
    } catch (err) {
      diffBox.append(h("p.error", err.message));
    }
  }
  const patchText = h("textarea", { name: "config", rows: 3, placeholder: '{"key": "new value"}' });
  const revise = h("form.card", { "aria-labelledby": "h-rev" }, h("h3#h-rev", "New revision"),
    field("Config changes (JSON merge patch)", patchText), h("button", { type: "submit" }, "Make revision"));
  revise.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const made = await post(`/v1/plans/${id}/revisions`, { config: parseJson(patchText.value, "config") });
      location.hash = `#/plans/${made.id}`;
    } catch (err) {
      say(err.message, "error");
    }
  });

  // Dispatch.
  const target = h("select", { name: "target" }, h("option", { value: "site" }, "a site queue (a task per block)"), h("option", { value: "job" }, "a job (one run with the script)"));
  const name = h("input", { name: "name", required: true, placeholder: "site name or job id/name" });
  const dispatch = h("form.card", { "aria-labelledby": "h-disp" }, h("h2#h-disp", "Dispatch"),
    h("div.grid2", field("To", target), field("Name", name)), h("button.primary", { type: "submit", disabled: !plan.verified }, "Dispatch"),
    plan.verified ? null : h("p.muted", "Only a verified plan can be dispatched."));
  dispatch.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const done = await post(`/v1/plans/${id}/dispatch`, { [target.value]: name.value.trim() });
      say(done.created ? `Dispatched: ${done.run_ids.length} run(s).` : `Already dispatched there (${when(done.at)}, ${done.run_ids.length} run(s)); nothing new was queued.`);
      await render(clear(main), { args });
    } catch (err) {
      say(err.message, "error");
    }
  });

  const script = h("details.card", h("summary", "Command script"), h("pre.log", plan.commands));
  append(main, [
    h("div.page-head", h("h1", `Plan ${id.slice(-10)}`), verdict(plan)),
    h("p.muted", `${plan.policy} policy, revision ${plan.revision}, ${when(plan.t0)} – ${when(plan.t1)}, ${plan.blocks.length} blocks`),
    h("section", { "aria-labelledby": "h-tl" }, h("h2#h-tl", "Timeline"), gantt(plan)),
    verification,
    h("section", { "aria-labelledby": "h-revs" }, h("h2#h-revs", "Revisions"), revs, diffBox, revise),
    dispatch,
    plan.dispatches.length ? h("section", h("h2", "Dispatches"), table(["At", "To", "Runs"], plan.dispatches.map((d) => h("tr", h("td", when(d.at)), h("td", d.site ? `site:${d.site}` : h("a", { href: `#/jobs/${d.job_id}` }, `job ${d.job_id.slice(-10)}`)), h("td", String(d.run_ids.length))))) ) : null,
    h("details.card", h("summary", "Blocks"), table(["Block", "Kind", "From", "To"], plan.blocks.map(blockRow))),
    script,
  ]);
}
