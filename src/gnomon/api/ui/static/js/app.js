// Boot, sign-in and the hash router. Each page module exports render(main, params, ctx) and may
// return a function that stops what it started (streams, timers).

import { ApiError, forgetToken, get, setToken, token } from "./api.js";
import { clear, clearMessages, field, h, say } from "./dom.js";
import * as dashboard from "./pages/dashboard.js";
import * as jobs from "./pages/jobs.js";
import * as job from "./pages/job.js";
import * as runs from "./pages/runs.js";
import * as run from "./pages/run.js";
import * as sites from "./pages/sites.js";
import * as plans from "./pages/plans.js";
import * as plan from "./pages/plan.js";
import * as settings from "./pages/settings.js";

const ROUTES = [
  [/^\/?$/, dashboard, "dashboard"],
  [/^\/jobs\/?$/, jobs, "jobs"],
  [/^\/jobs\/([^/]+)$/, job, "jobs"],
  [/^\/runs\/?$/, runs, "runs"],
  [/^\/runs\/([^/]+)$/, run, "runs"],
  [/^\/sites\/?$/, sites, "sites"],
  [/^\/sites\/([^/]+)$/, sites, "sites"],
  [/^\/plans\/?$/, plans, "plans"],
  [/^\/plans\/([^/]+)$/, plan, "plans"],
  [/^\/settings\/?$/, settings, "settings"],
];

const main = document.getElementById("main");
const ctx = { me: null };
let stop = null;
let generation = 0;

function signIn(problem) {
  if (stop) stop();
  stop = null;
  clear(main);
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false", name: "token" });
  const remember = h("input", { type: "checkbox", id: "remember" });
  const form = h(
    "form.card.signin",
    { "aria-labelledby": "signin-title" },
    h("h1#signin-title", "Sign in"),
    h("p.muted", "Paste a gnomon token. `gnomon serve` writes the first admin token to <data dir>/admin.token."),
    field("Token", input),
    h("div.check", remember, h("label", { for: "remember" }, "Remember on this device")),
    h("button.primary", { type: "submit" }, "Sign in"),
  );
  if (problem) form.insertBefore(h("p.error", { role: "alert" }, problem), form.querySelector(".field"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    try {
      ctx.me = await get("/v1/whoami", { tokenValue: value });
      setToken(value, remember.checked);
      showWho();
      route();
    } catch (err) {
      signIn(err instanceof ApiError && err.status === 401 ? `Not signed in: ${err.message}` : err.message);
    }
  });
  main.append(form);
  input.focus();
}

function showWho() {
  const box = clear(document.getElementById("who"));
  if (!ctx.me) return;
  const out = h("button.link", { type: "button" }, "Sign out");
  out.addEventListener("click", () => {
    forgetToken();
    ctx.me = null;
    showWho();
    signIn();
  });
  box.append(h("span.muted", ctx.me.name, ctx.me.admin ? " (admin)" : ""), " ", out);
}

async function route() {
  const mine = ++generation;
  if (stop) stop();
  stop = null;
  if (!token()) return signIn();
  if (!ctx.me) {
    try {
      ctx.me = await get("/v1/whoami");
      showWho();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      clear(main).append(h("p.error", { role: "alert" }, err.message));
      return;
    }
  }
  const path = decodeURIComponent(location.hash.replace(/^#/, "").split("?")[0]) || "/";
  const params = Object.fromEntries(new URLSearchParams(location.hash.split("?")[1] || ""));
  const found = ROUTES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll("#nav a")) {
    if (found && a.dataset.page === found[2]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clear(main);
  if (!found) {
    main.append(h("h1", "Not found"), h("p", "No page here. ", h("a", { href: "#/" }, "Go to the dashboard")));
    return;
  }
  const [re, page] = found;
  const args = path.match(re).slice(1);
  try {
    const cleanup = await page.render(main, { args, params }, ctx);
    if (mine !== generation) {
      if (cleanup) cleanup();
    } else stop = cleanup || null;
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof ApiError && err.status === 401) return;
    main.append(h("div.error", { role: "alert" }, h("strong", "Could not load this page: "), err.message));
  }
}

window.addEventListener("gnomon:unauthorized", (e) => {
  if (!token()) return;
  forgetToken();
  ctx.me = null;
  showWho();
  signIn(`Signed out: ${e.detail}`);
});
window.addEventListener("hashchange", () => {
  clearMessages();
  route();
  main.focus({ preventScroll: true });
});
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason && e.reason.name === "AbortError") return;
  say(e.reason && e.reason.message ? e.reason.message : String(e.reason), "error");
});
window.addEventListener("error", (e) => say(e.message || "unexpected error", "error"));

// The skip link moves focus without touching the hash (the hash is the route).
document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});

const menu = document.querySelector(".menu");
menu.addEventListener("click", () => {
  const open = menu.getAttribute("aria-expanded") !== "true";
  menu.setAttribute("aria-expanded", String(open));
  document.getElementById("nav").classList.toggle("open", open);
});
document.getElementById("nav").addEventListener("click", () => {
  menu.setAttribute("aria-expanded", "false");
  document.getElementById("nav").classList.remove("open");
});

route();
