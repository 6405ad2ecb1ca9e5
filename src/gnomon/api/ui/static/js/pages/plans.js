// Plans: the list, and a form to generate one from a policy.

import { get, post, query } from "../api.js";
import { clear, field, h, parseJson, say, table, when } from "../dom.js";

function isoInput(d) {
  return d.toISOString().slice(0, 16);
}

export function verdict(p) {
  return h(`span.badge.${p.verified ? "on" : "off"}`, p.verified ? "verified" : "not verified");
}

export async function render(main) {
  const list = h("div");
  const more = h("button", { type: "button", hidden: true }, "More");
  const policy = h("select", { name: "policy" });
  const now = new Date();
  now.setUTCMinutes(0, 0, 0);
  const t0 = h("input", { name: "t0", type: "datetime-local", value: isoInput(now), required: true });
  const t1 = h("input", { name: "t1", type: "datetime-local", value: isoInput(new Date(now.getTime() + 6 * 3600e3)), required: true });
  const config = h("textarea", { name: "config", rows: 4, placeholder: "{}" });
  const form = h("form.card", { "aria-labelledby": "h-newplan" }, h("h2#h-newplan", "New plan"),
    h("div.grid3", field("Policy", policy), field("From (UTC)", t0), field("To (UTC)", t1)),
    field("Config overrides (JSON)", config, "Merged over the policy's defaults."),
    h("button.primary", { type: "submit" }, "Generate plan"));
  main.append(h("h1", "Plans"), list, more, form);

  const { items: policies } = await get("/v1/policies");
  for (const p of policies) policy.append(h("option", { value: p.name }, p.name));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const made = await post("/v1/plans", { policy: policy.value, t0: `${t0.value}:00Z`, t1: `${t1.value}:00Z`, config: parseJson(config.value, "config") });
      location.hash = `#/plans/${made.id}`;
    } catch (err) {
      say(err.message, "error");
    }
  });

  let cursor = null;
  async function load(reset) {
    const page = await get(`/v1/plans${query({ cursor, limit: 50 })}`);
    const rows = page.items.map((p) => h("tr",
      h("td", h("a", { href: `#/plans/${p.id}` }, p.id.slice(-10))), h("td", p.policy), h("td", when(p.t0)), h("td", when(p.t1)),
      h("td", String(p.revision)), h("td", verdict(p)), h("td", String(p.dispatches.length))));
    const body = list.querySelector("tbody");
    if (body && !reset) body.append(...rows);
    else clear(list).append(table(["Plan", "Policy", "From", "To", "Revision", "Verification", "Dispatches"], rows, "No plans yet."));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load(false).catch((e) => say(e.message, "error")));
  await load(true);
}
