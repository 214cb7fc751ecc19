// The dashboard: polls the drift worker's status every 2 s and redraws. Plain browser JS, no build.

const prefix = document.body.dataset.prefix || "/dashboard";
const charts = new Map(); // chart id → { plot, data }
const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
const fmt = (x, digits = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const badge = (severity) => `<span class="badge ${esc(severity)}">${esc(severity)}</span>`;

function row(cells) {
  return `<tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
}

function renderFreshness(status) {
  const rows = [];
  for (const [source, s] of Object.entries(status.freshness.sources)) {
    rows.push(row([esc(source), fmtTime(s.newestEventTime), `${fmt(s.ageSeconds, 1)} s`, badge(s.severity)]));
  }
  for (const lag of status.freshness.lag) {
    rows.push(row([`${esc(lag.group)} / ${esc(lag.topic)}`, "–", `lag ${lag.lag}`, badge(lag.severity)]));
  }
  document.querySelector("#freshness tbody").innerHTML =
    rows.join("") || row(['<span class="empty">no events yet</span>', "", "", ""]);
}

function renderAlerts(status) {
  const timeline = [...status.alerts.timeline].reverse().slice(0, 30);
  document.querySelector("#alerts tbody").innerHTML =
    timeline
      .map(
        (a) =>
          `<tr data-testid="alert" data-status="${esc(a.status)}" data-subject="${esc(a.subject)}">` +
          `<td>${fmtTime(a.at)}</td><td>${badge(a.status.toLowerCase())}</td><td>${badge(a.severity.toLowerCase())}</td>` +
          `<td>${esc(a.kind)}</td><td>${esc(a.subject)}</td><td>${esc(a.message)}</td></tr>`,
      )
      .join("") || row(['<span class="empty">no alerts</span>', "", "", "", "", ""]);
  const active = status.alerts.active.length;
  document.getElementById("summary").innerHTML =
    active > 0
      ? `<span class="badge critical">${active} active alert${active > 1 ? "s" : ""}</span>`
      : badge("ok");
}

/** Reference vs current shares per bin, as grouped bars in SVG. */
function histogram(bins) {
  if (!bins || bins.labels.length === 0) return '<div class="empty">no closed window yet</div>';
  const width = 400;
  const height = 90;
  const n = bins.labels.length;
  const max = Math.max(...bins.reference, ...bins.current, 1e-9);
  const slot = width / n;
  const bar = Math.max(1, slot / 2 - 1);
  let bars = "";
  for (let i = 0; i < n; i++) {
    const r = (bins.reference[i] / max) * (height - 14);
    const c = (bins.current[i] / max) * (height - 14);
    const x = i * slot;
    bars +=
      `<rect x="${x}" y="${height - 12 - r}" width="${bar}" height="${r}" fill="#90a4ae"><title>${esc(bins.labels[i])}: reference ${fmt(bins.reference[i])}</title></rect>` +
      `<rect x="${x + bar}" y="${height - 12 - c}" width="${bar}" height="${c}" fill="#1e88e5"><title>${esc(bins.labels[i])}: current ${fmt(bins.current[i])}</title></rect>`;
    if (n <= 12) {
      bars += `<text x="${x + bar}" y="${height - 1}" font-size="8" text-anchor="middle" fill="#666">${esc(String(bins.labels[i]).slice(0, 8))}</text>`;
    }
  }
  return (
    `<svg class="hist" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${bars}</svg>` +
    '<div class="legend"><i style="background:#90a4ae"></i>reference<i style="background:#1e88e5"></i>current window</div>'
  );
}

/** A small uPlot line chart, created once per id and updated in place. */
function lineChart(container, id, times, series) {
  if (times.length < 2) return;
  const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)];
  const existing = charts.get(id);
  if (existing?.plot.root.isConnected) {
    existing.plot.setData(data);
    return;
  }
  const plot = new uPlot(
    {
      width: 400,
      height: 110,
      legend: { show: false },
      scales: { x: { time: true } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5 }))],
      axes: [{ size: 30 }, { size: 40 }],
    },
    data,
    container,
  );
  charts.set(id, { plot });
}

function statisticsLine(latest) {
  if (!latest) return "waiting for the first window";
  const s = latest.statistics;
  const parts = [];
  if (s.psi !== undefined) parts.push(`PSI ${fmt(s.psi)}`);
  if (s.ks) parts.push(`KS D ${fmt(s.ks.statistic)} (p ${s.ks.pAdjusted.toExponential(1)})`);
  if (s.chiSquared)
    parts.push(`χ² ${fmt(s.chiSquared.statistic, 1)} (p ${s.chiSquared.pAdjusted.toExponential(1)})`);
  if (s.js !== undefined) parts.push(`JS ${fmt(s.js)}`);
  parts.push(`nulls ${fmt(s.nullRate * 100, 1)}%`);
  return `${parts.join(" · ")} · n=${latest.window.count}${latest.insufficient ? " (too few for a verdict)" : ""}`;
}

function renderSubjects(status) {
  const container = document.getElementById("features");
  const subjects = { ...status.drift.features, ...status.drift.predictions };
  const names = Object.keys(subjects).sort();
  if (names.length === 0) {
    container.innerHTML = '<div class="empty">no monitored features yet</div>';
    return;
  }
  for (const name of names) {
    const s = subjects[name];
    const id = `subject-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const card = cardOf(
      container,
      id,
      "feature-card",
      `<h3><span>${esc(name)}</span><span class="sev"></span></h3><div class="stats"></div><div class="histo"></div><div class="legend">${s.type === "numerical" ? "PSI" : "JS"} per window</div><div class="trend"></div>`,
    );
    card.dataset.subject = name;
    card.dataset.severity = s.severity;
    card.querySelector(".sev").innerHTML = badge(s.severity);
    card.querySelector(".stats").textContent = `${s.type} · ${statisticsLine(s.latest)}`;
    card.querySelector(".histo").innerHTML = histogram(s.latest?.bins);
    const history = s.history.filter((h) => !h.insufficient);
    const trend = s.type === "numerical" ? "psi" : "js";
    lineChart(
      card.querySelector(".trend"),
      id,
      history.map((h) => h.at),
      [
        {
          label: trend.toUpperCase(),
          color: "#c62828",
          values: history.map((h) => h.statistics[trend] ?? null),
        },
      ],
    );
  }
  container.querySelector(".empty")?.remove();
}

/** The card with this id, made once inside `container` (later refreshes update it in place). */
function cardOf(container, id, testid, html) {
  let card = document.getElementById(id);
  if (!card) {
    card = document.createElement("div");
    card.id = id;
    card.className = "card";
    card.dataset.testid = testid;
    card.innerHTML = html;
    container.appendChild(card);
  }
  return card;
}

function renderModels(status) {
  const container = document.getElementById("models");
  const models = Object.entries(status.accuracy.models);
  if (models.length === 0) {
    container.innerHTML = '<div class="empty">no labelled predictions yet</div>';
    return;
  }
  container.querySelector(".empty")?.remove();
  for (const [name, m] of models) {
    const id = `model-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const card = cardOf(
      container,
      id,
      "model-card",
      `<h3><span>${esc(name)}</span><span class="sev"></span></h3><div class="stats"></div><div class="trend"></div>`,
    );
    card.dataset.severity = m.severity;
    card.querySelector(".sev").innerHTML = badge(m.severity);
    card.querySelector(".stats").textContent = m.latest
      ? `accuracy ${fmt(m.latest.accuracy)} · AUC ${fmt(m.latest.auc)} · ${m.latest.labelled} labelled · floor ${m.accuracyFloor}`
      : `waiting for labels (${m.joined ?? 0} joined)`;
    lineChart(
      card.querySelector(".trend"),
      id,
      m.history.map((h) => h.at),
      [
        { label: "accuracy", color: "#2e7d32", values: m.history.map((h) => h.accuracy) },
        { label: "AUC", color: "#1e88e5", values: m.history.map((h) => h.auc) },
      ],
    );
  }
}

const fmtWindow = (ms) =>
  ms % 86_400_000 === 0
    ? `${ms / 86_400_000}d`
    : ms % 3_600_000 === 0
      ? `${ms / 3_600_000}h`
      : `${ms / 60_000}m`;
const pct = (x) => (typeof x === "number" ? `${(x * 100).toFixed(1)}%` : "–");

/** Each view and model: its owner, on-call route, gate and lineage; each SLO: budget and burn. */
function renderPipeline(status) {
  const pipeline = status.pipeline;
  document.getElementById("pipeline-section").hidden = !pipeline;
  if (!pipeline) return;
  document.querySelector("#pipeline tbody").innerHTML = pipeline.items
    .map((item) => {
      const gate = item.gate;
      const state = gate ? gate.state : "ok";
      const cell = gate
        ? `${badge(state === "overridden" ? "warn" : "critical")} ${esc(state)} · ${esc(gate.causes.join(", ") || "clearing")} since ${fmtTime(gate.since)}` +
          (gate.note ? ` — ${esc(gate.note)}` : "") +
          ` <small>(${esc(gate.by)})</small>`
        : badge("ok");
      return (
        `<tr data-testid="pipeline-item" data-kind="${esc(item.kind)}" data-name="${esc(item.name)}" data-owner="${esc(item.owner ?? "")}" data-gate="${esc(state)}">` +
        `<td>${esc(item.kind)} <b>${esc(item.name)}</b></td><td>${esc(item.owner ?? "— no owner")}</td><td>${esc(item.onCall ?? "–")}</td>` +
        `<td>${cell}</td><td class="lineage">${esc(item.lineage)}</td></tr>`
      );
    })
    .join("");
  document.querySelector("#slos tbody").innerHTML =
    pipeline.slos
      .map((slo) => {
        const budget =
          slo.budgetLeft === null
            ? "–"
            : `${badge(slo.budgetLeft <= 0 ? "critical" : slo.budgetLeft < 0.25 ? "warn" : "ok")} ${pct(slo.budgetLeft)}`;
        return (
          `<tr data-testid="slo" data-name="${esc(slo.name)}" data-budget="${slo.budgetLeft ?? ""}">` +
          `<td><b>${esc(slo.name)}</b> <small>${esc(slo.kind)}</small></td><td>${esc(slo.about)}</td><td>${pct(slo.objective)}</td>` +
          `<td>${fmtWindow(slo.windowMs)}</td><td>${budget}</td><td>${fmt(slo.burnRate1h, 2)}</td>` +
          `<td>${slo.measuredBy === "prometheus" ? "Prometheus (tessera slo rules)" : `this worker, ${slo.samples} samples`}</td></tr>`
        );
      })
      .join("") || row(['<span class="empty">no SLOs in the definitions</span>', "", "", "", "", "", ""]);
}

async function refresh() {
  try {
    const response = await fetch(`${prefix}/status.json`, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) {
      document.getElementById("updated").textContent = `${body.status}: ${body.detail ?? ""}`;
      return;
    }
    document.getElementById("reference").textContent =
      `against reference “${body.reference.name}” (${body.reference.rows} rows)`;
    renderPipeline(body);
    renderFreshness(body);
    renderAlerts(body);
    renderModels(body);
    renderSubjects(body);
    document.body.dataset.ready = "true";
    document.getElementById("updated").textContent = `updated ${fmtTime(body.now)}`;
  } catch (error) {
    document.getElementById("updated").textContent = `cannot reach the drift worker: ${error.message}`;
  }
}

refresh();
setInterval(refresh, 2000);
