// Charts drawn as SVG: throughput bars and a plan's Gantt timeline.

import { h, s } from "./dom.js";

/** Stacked bars of finished runs per bucket: succeeded below, failed on top. */
export function throughput(series, bucketS) {
  const W = 600;
  const H = 160;
  const pad = { l: 36, r: 8, t: 8, b: 22 };
  const max = Math.max(1, ...series.map((b) => b.succeeded + b.failed + b.other));
  const bw = (W - pad.l - pad.r) / series.length;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "Finished runs per bucket over the last hour" });
  svg.append(s("line", { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: "axis" }));
  svg.append(s("text", { x: pad.l - 4, y: y(max) + 4, class: "tick", "text-anchor": "end" }, String(max)));
  svg.append(s("text", { x: pad.l - 4, y: y(0), class: "tick", "text-anchor": "end" }, "0"));
  series.forEach((b, i) => {
    const x = pad.l + i * bw + 2;
    const w = Math.max(1, bw - 4);
    const ok = b.succeeded + b.other;
    const label = `${new Date(b.start).toLocaleTimeString()}: ${b.succeeded} succeeded, ${b.failed} failed, ${b.other} cancelled`;
    const g = s("g", {}, s("title", {}, label));
    if (ok) g.append(s("rect", { x, y: y(ok), width: w, height: y(0) - y(ok), class: "bar-ok" }));
    if (b.failed) g.append(s("rect", { x, y: y(ok + b.failed), width: w, height: y(ok) - y(ok + b.failed), class: "bar-failed" }));
    svg.append(g);
    if (i % Math.ceil(series.length / 6) === 0) {
      const t = new Date(b.start);
      svg.append(s("text", { x: x + w / 2, y: H - 6, class: "tick", "text-anchor": "middle" }, t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    }
  });
  return h("figure.chart-box", svg, h("figcaption.muted", `Finished runs per ${Math.round(bucketS / 60)} min; red: failed, timed out or lost.`));
}

const KINDS = ["survey", "calibration", "wait"];

/**
 * A plan as a Gantt chart: one row per block kind, and a row of the gaps between blocks (time
 * the policy left out: sun-avoidance cuts, sources below the horizon). Problems found by the
 * verifier are marked.
 */
export function gantt(plan) {
  const t0 = Date.parse(plan.t0);
  const t1 = Date.parse(plan.t1);
  const span = Math.max(1, t1 - t0);
  const blocks = plan.blocks.map((b, i) => ({ ...b, i, a: Date.parse(b.t0), z: Date.parse(b.t1) }));
  const kinds = [...KINDS.filter((k) => blocks.some((b) => b.kind === k)), ...new Set(blocks.map((b) => b.kind).filter((k) => !KINDS.includes(k)))];
  const rows = [...kinds, "gaps"];
  const W = 900;
  const rowH = 28;
  const pad = { l: 92, r: 10, t: 8, b: 26 };
  const H = pad.t + rows.length * rowH + pad.b;
  const x = (t) => pad.l + ((t - t0) / span) * (W - pad.l - pad.r);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "gantt", role: "img", "aria-label": `Plan timeline: ${blocks.length} blocks` });
  rows.forEach((r, j) => {
    const yy = pad.t + j * rowH;
    svg.append(s("rect", { x: pad.l, y: yy, width: W - pad.l - pad.r, height: rowH - 2, class: "lane" }));
    svg.append(s("text", { x: pad.l - 6, y: yy + rowH / 2 + 4, "text-anchor": "end", class: "tick" }, r));
  });
  const bad = new Set((plan.verification.problems || []).map((p) => p.block));
  for (const b of blocks) {
    const j = rows.indexOf(b.kind);
    const yy = pad.t + j * rowH + 3;
    const label = `${b.name} (${b.kind}) ${new Date(b.a).toISOString()} → ${new Date(b.z).toISOString()}${b.az != null ? ` az ${b.az.toFixed(1)} alt ${b.alt.toFixed(1)}` : ""}`;
    svg.append(s("rect", { x: x(b.a), y: yy, width: Math.max(1, x(b.z) - x(b.a)), height: rowH - 8, class: `blk blk-${b.kind}${bad.has(b.i) ? " blk-bad" : ""}`, "data-block": b.i }, s("title", {}, label)));
  }
  const sorted = [...blocks].sort((p, q) => p.a - q.a);
  let cursor = t0;
  const gy = pad.t + (rows.length - 1) * rowH + 3;
  for (const b of [...sorted, { a: t1, z: t1 }]) {
    if (b.a - cursor > span / 2000) {
      svg.append(s("rect", { x: x(cursor), y: gy, width: Math.max(1, x(b.a) - x(cursor)), height: rowH - 8, class: "blk blk-gap" }, s("title", {}, `gap ${new Date(cursor).toISOString()} → ${new Date(b.a).toISOString()}`)));
    }
    cursor = Math.max(cursor, b.z);
  }
  for (let k = 0; k <= 6; k++) {
    const t = t0 + (span * k) / 6;
    svg.append(s("text", { x: x(t), y: H - 8, class: "tick", "text-anchor": k === 0 ? "start" : k === 6 ? "end" : "middle" }, new Date(t).toISOString().slice(5, 16).replace("T", " ")));
  }
  return h("figure.chart-box.gantt-box", svg, h("figcaption.muted", "UTC. Rows: block kinds; gaps: time without a block (sun-avoidance cuts, sources out of range). Red outline: a verification problem."));
}
