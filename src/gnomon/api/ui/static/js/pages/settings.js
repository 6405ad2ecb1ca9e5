// Settings: tokens (create, revoke), spaces and their members.

import { ApiError, del, get, post, put } from "../api.js";
import { append, clear, confirmDialog, field, h, say, table, when } from "../dom.js";

const ROLES = ["viewer", "developer", "manager"];

export async function render(main, _route, ctx) {
  const tokens = h("div");
  const spaces = h("div");
  main.append(h("h1", "Settings"),
    h("section", { "aria-labelledby": "h-tok" }, h("h2#h-tok", "Tokens"), tokens),
    h("section", { "aria-labelledby": "h-sp" }, h("h2#h-sp", "Spaces and members"), spaces));

  let spaceList = [];
  async function loadSpaces() {
    spaceList = (await get("/v1/spaces")).items;
    const cards = spaceList.map((sp) => {
      const tokenId = h("input", { name: "token_id", required: true, placeholder: "token id" });
      const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
      const add = h("form.row", { "aria-label": `Add a member to ${sp.name}` }, field("Token id", tokenId), field("Role", role), h("button", { type: "submit" }, "Set role"));
      add.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await put(`/v1/spaces/${sp.name}/members/${encodeURIComponent(tokenId.value.trim())}`, { role: role.value });
          await loadSpaces();
        } catch (err) {
          say(err.message, "error");
        }
      });
      const rows = sp.members.map((m) => {
        const rm = h("button.danger", { type: "button" }, "Remove");
        rm.addEventListener("click", async () => {
          if (!(await confirmDialog(`Remove ${m.name} from ${sp.name}?`, "Remove"))) return;
          try {
            await del(`/v1/spaces/${sp.name}/members/${m.token_id}`);
            await loadSpaces();
          } catch (err) {
            say(err.message, "error");
          }
        });
        return h("tr", h("td", m.name), h("td", h("code", m.token_id)), h("td", m.role), h("td", rm));
      });
      return h("article.card", h("h3", sp.name, " ", h("span.muted", `(${sp.timezone})`)),
        table(["Member", "Token id", "Role", ""], rows, "No members: admins only."), add);
    });
    const name = h("input", { name: "space", required: true, pattern: "[a-z0-9][a-z0-9_\\-]*", maxlength: 64 });
    const tz = h("input", { name: "timezone", value: "UTC" });
    const create = h("form.card", { "aria-labelledby": "h-newsp" }, h("h3#h-newsp", "New space"), h("div.grid2", field("Name", name), field("Time zone", tz)), h("button", { type: "submit" }, "Create space"));
    create.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await post("/v1/spaces", { name: name.value.trim(), timezone: tz.value.trim() || "UTC" });
        await loadSpaces();
      } catch (err) {
        say(err.message, "error");
      }
    });
    append(clear(spaces), [cards, ctx.me && ctx.me.admin ? create : null]);
  }

  async function loadTokens() {
    let items;
    try {
      items = (await get("/v1/tokens")).items;
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        clear(tokens).append(h("p.muted", err.message));
        return;
      }
      throw err;
    }
    const rows = items.map((t) => {
      const revoke = h("button.danger", { type: "button", disabled: !!t.revoked_at }, "Revoke");
      revoke.addEventListener("click", async () => {
        if (!(await confirmDialog(`Revoke token ${t.name}? Clients using it stop working at once.`, "Revoke"))) return;
        try {
          await del(`/v1/tokens/${t.id}`);
          await loadTokens();
        } catch (err) {
          say(err.message, "error");
        }
      });
      const roles = t.admin ? "admin" : Object.entries(t.roles).map(([k, v]) => `${k}: ${v}`).join(", ");
      return h("tr", h("td", t.name), h("td", h("code", t.id)), h("td", roles), h("td", when(t.created_at)), h("td", t.revoked_at ? `revoked ${when(t.revoked_at)}` : "active"), h("td", revoke));
    });
    const name = h("input", { name: "name", required: true, maxlength: 200 });
    const space = h("select", { name: "space" }, spaceList.map((sp) => h("option", { value: sp.name }, sp.name)));
    const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)), ctx.me && ctx.me.admin ? h("option", { value: "admin" }, "admin (all spaces)") : null);
    const secret = h("div");
    const create = h("form.card", { "aria-labelledby": "h-newtok" }, h("h3#h-newtok", "New token"),
      h("div.grid3", field("Name", name), field("Space", space), field("Role", role)), h("button", { type: "submit" }, "Create token"), secret);
    create.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const body = role.value === "admin" ? { name: name.value.trim(), admin: true } : { name: name.value.trim(), roles: { [space.value]: role.value } };
        const made = await post("/v1/tokens", body);
        await loadTokens();
        tokens.querySelector("form").append(h("div.secret", { role: "status" }, h("p", "Copy the token now: it is not shown again."), h("code.select", { tabindex: "0" }, made.token)));
      } catch (err) {
        say(err.message, "error");
      }
    });
    clear(tokens).append(table(["Name", "Id", "Roles", "Created", "State", ""], rows), create);
  }

  await loadSpaces();
  await loadTokens();
}
