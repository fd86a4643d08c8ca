// The round viewer's page: a live, virtualised list of rounds (the server filters and pages)
// and the sequence diagram of the selected round, drawn in SVG from the server's diagram model.

const ROW_PX = 26;
/** Rows fetched beyond the visible ones, above and below, so a short scroll needs no fetch. */
const OVERSCAN_ROWS = 20;
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const LANE_PX = 140;
const STEP_PX = 30;
const TOP_PX = 60;
const AXIS_PX = 80;
/** Gap kept between two labels, and the step by which a label moves away from a taken place. */
const LABEL_GAP_PX = 2;
const LABEL_STEP_PX = 12;
/** The model's round kinds as the page names them. */
const KIND_NAMES = {
  proposal: "proposal round",
  election: "election",
  phase1: "Paxos phase 1",
  phase2: "Paxos phase 2",
  read: "read round",
};
const kindName = (kind) => KIND_NAMES[kind] ?? kind;

const $ = (selector) => document.querySelector(selector);
const list = $("#list");
const spacer = $("#list-spacer");
const filters = $("#filters");

const state = {
  /** Window of rows on screen: [offset, offset + rounds.length). */
  page: null,
  /** The query string `page` answered. */
  query: "",
  selected: null,
  jaegerUrl: null,
  fetching: false,
  refetch: false,
};

/** Render timings, read by the benchmark and the end-to-end test. */
window.viewerTimings = { listRenderMs: 0, roundRenderMs: 0, listRenders: 0, roundRenders: 0 };

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function titled(node, text) {
  node.append(svg("title", {}, text));
  return node;
}

/** One formatter for every row: creating one per call costs more than the row. */
const timeOfDay = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const clock = (ms) => `${timeOfDay.format(ms)}.${String(new Date(ms).getMilliseconds()).padStart(3, "0")}`;
const fmtOffset = (ms) => `${ms < 0 ? "−" : "+"}${fmtMs(Math.abs(ms))} ms`;
const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const fmtBytes = (bytes) => (bytes >= 10_240 ? `${(bytes / 1024).toFixed(0)} KiB` : `${bytes} B`);

function queryString(extra) {
  const params = new URLSearchParams();
  for (const name of ["cluster", "protocol", "kind", "outcome", "minDurationMs"]) {
    const value = filters.elements[name].value;
    if (value !== "") params.set(name, value);
  }
  for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
  return params.toString();
}

function visibleWindow() {
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_PX) - OVERSCAN_ROWS);
  const count = Math.ceil(list.clientHeight / ROW_PX) + 2 * OVERSCAN_ROWS;
  return { offset: first, limit: count };
}

async function refreshList() {
  if (state.fetching) {
    state.refetch = true;
    return;
  }
  state.fetching = true;
  try {
    const query = queryString(visibleWindow());
    const response = await fetch(`/api/rounds?${query}`);
    if (!response.ok) throw new Error(`rounds: HTTP ${response.status}`);
    const page = await response.json();
    const shown = state.page;
    // Nothing arrived and the same rows are wanted: the DOM stays as it is.
    const same =
      shown !== null &&
      state.query === query &&
      shown.version === page.version &&
      shown.offset === page.offset &&
      shown.rounds.length === page.rounds.length &&
      shown.total === page.total;
    state.query = query;
    if (!same) renderList(page);
    renderStats(page.stats);
    renderFacets(page.facets);
    $("#status").textContent = `${page.total} round${page.total === 1 ? "" : "s"} · updated ${clock(Date.now())}`;
  } catch (err) {
    $("#status").textContent = `not updated: ${err.message}`;
  } finally {
    state.fetching = false;
    if (state.refetch) {
      state.refetch = false;
      refreshList();
    }
  }
}

function renderList(page) {
  const started = performance.now();
  const changed = state.page !== null && state.page.version !== page.version;
  state.page = page;
  spacer.style.height = `${page.total * ROW_PX}px`;
  for (const row of list.querySelectorAll(".row")) row.remove();
  const rows = document.createDocumentFragment();
  page.rounds.forEach((round, i) => {
    const row = el("div", {
      class: `row${round.id === state.selected ? " selected" : ""}`,
      "data-round-id": round.id,
      "data-kind": round.kind,
      style: `top:${(page.offset + i) * ROW_PX}px`,
    });
    row.append(
      el("span", { title: new Date(round.startMs).toISOString() }, clock(round.startMs)),
      el("span", {}, kindName(round.kind)),
      el("span", {}, round.cluster),
      el(
        "span",
        { class: round.partial ? "partial" : "", title: round.partial ? "some spans are missing" : "" },
        round.label,
      ),
      el("span", { class: `outcome-${round.outcome}` }, round.outcome),
      el("span", { class: "ms" }, fmtMs(round.durationMs)),
    );
    if (state.jaegerUrl !== null) {
      const link = el(
        "a",
        {
          href: `${state.jaegerUrl}/trace/${round.traceId}`,
          target: "_blank",
          rel: "noopener",
          class: "jaeger",
          title: "trace in Jaeger",
        },
        "↗",
      );
      row.append(link);
    }
    rows.append(row);
  });
  list.append(rows);
  window.viewerTimings.listRenderMs = performance.now() - started;
  window.viewerTimings.listRenders++;
  // Spans of the open round may still be arriving: redraw it when anything arrived.
  if (changed && state.selected !== null) showRound(state.selected);
}

function renderStats(stats) {
  const body = $("#stats tbody");
  body.replaceChildren(
    ...stats.map((s) => {
      const tr = el("tr", { "data-kind": s.kind });
      tr.append(
        el("td", {}, kindName(s.kind)),
        el("td", {}, s.count),
        el("td", {}, `${fmtMs(s.p50Ms)} ms`),
        el("td", {}, `${fmtMs(s.p99Ms)} ms`),
      );
      return tr;
    }),
  );
}

function renderFacets(facets) {
  const pairs = [
    ["cluster", facets.clusters],
    ["protocol", facets.protocols],
    ["kind", facets.kinds],
    ["outcome", facets.outcomes],
  ];
  for (const [name, values] of pairs) {
    const select = filters.elements[name];
    const current = select.value;
    const known = [...select.options].map((o) => o.value).slice(1);
    if (known.join("\n") === values.join("\n")) continue;
    const text = name === "kind" ? kindName : (v) => v;
    select.replaceChildren(
      el("option", { value: "" }, "all"),
      ...values.map((v) => el("option", { value: v }, text(v))),
    );
    select.value = values.includes(current) ? current : "";
  }
}

function selectRound(id) {
  state.selected = id;
  for (const row of list.querySelectorAll(".row")) row.classList.toggle("selected", row.dataset.roundId === id);
  if (location.hash !== `#round=${id}`) history.replaceState(null, "", `#round=${id}`);
  return showRound(id);
}

async function showRound(id) {
  const response = await fetch(`/api/rounds/${encodeURIComponent(id)}`);
  if (!response.ok) {
    $("#round-info").replaceChildren(el("p", { class: "missing" }, "That round has left the window."));
    $("#diagram").replaceChildren();
    return;
  }
  renderRound(await response.json());
}

function renderInfo(model) {
  const info = $("#round-info");
  const head = el("h2", {}, `${kindName(model.kind)} · ${model.label} · ${model.outcome}`);
  const facts = [
    `${model.protocol} · cluster ${model.cluster} · ${fmtMs(model.durationMs)} ms · started ${clock(model.startMs)}`,
  ];
  if (model.quorumSize !== undefined) facts.push(`quorum ${model.quorumSize}`);
  const parts = [head, el("p", {}, facts.join(" · "))];
  if (model.requests.length > 0) {
    const names = model.requests.map((r) => `${r.name ?? `span ${r.spanId}`}${r.key === undefined ? "" : ` ${r.key}`}`);
    parts.push(el("p", { class: "requests" }, `client request${names.length === 1 ? "" : "s"}: ${names.join(", ")}`));
  }
  if (state.jaegerUrl !== null) {
    const p = el("p");
    p.append(
      el(
        "a",
        { href: `${state.jaegerUrl}/trace/${model.traceId}`, target: "_blank", rel: "noopener", class: "jaeger" },
        "trace in Jaeger",
      ),
    );
    parts.push(p);
  }
  const legend = el("p", { class: "legend" });
  legend.append(
    el("span", { class: "key quorum" }, "━ the reply that completed the quorum"),
    el("span", { class: "key critical" }, "━ critical path"),
    el("span", { class: "key" }, "┅ reply · dashed lane: exported no span"),
  );
  parts.push(legend);
  for (const missing of model.missing) parts.push(el("p", { class: "missing" }, `not exported: ${missing}`));
  info.replaceChildren(...parts);
}

/**
 * The sequence diagram. Time runs down in event order (one step per distinct instant), so
 * close events stay readable; each element's title gives its exact times.
 */
function renderRound(model) {
  const started = performance.now();
  renderInfo(model);
  const instants = new Set();
  for (const a of model.arrows) {
    instants.add(a.sentMs);
    instants.add(a.receivedMs ?? a.sentMs);
  }
  for (const m of model.marks) instants.add(m.timeMs);
  for (const p of model.phases) {
    instants.add(p.startMs);
    instants.add(p.endMs);
  }
  const order = [...instants].sort((a, b) => a - b);
  const step = new Map(order.map((t, i) => [t, i]));
  const y = (t) => TOP_PX + 20 + step.get(t) * STEP_PX;
  const laneIndex = new Map(model.laneList.map((l, i) => [l.id, i]));
  const x = (lane) => AXIS_PX + LANE_PX / 2 + laneIndex.get(lane) * LANE_PX;
  const height = TOP_PX + 40 + order.length * STEP_PX;
  const width = AXIS_PX + model.laneList.length * LANE_PX + 120;
  const t0 = model.startMs;

  const root = svg("svg", {
    class: "sequence",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "data-round-id": model.id,
    "data-lanes": model.laneList.length,
  });
  const defs = svg("defs");
  for (const [name, colour] of [
    ["request", "#3b6fb6"],
    ["reply", "#7a8699"],
    ["quorum", "#d97706"],
    ["critical", "#c2185b"],
    ["denied", "#b91c1c"],
  ]) {
    const marker = svg("marker", {
      id: `head-${name}`,
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
    });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }));
    defs.append(marker);
  }
  root.append(defs);

  // Election phases as bands behind the arrows; a single phase needs no band.
  if (model.phases.length > 1) {
    model.phases.forEach((phase, i) => {
      const g = svg("g", { class: `phase phase-${i % 2}`, "data-phase": phase.name });
      const top = y(phase.startMs) - STEP_PX / 2;
      g.append(
        svg("rect", {
          x: AXIS_PX,
          y: top,
          width: width - AXIS_PX,
          height: y(phase.endMs) - y(phase.startMs) + (i === model.phases.length - 1 ? STEP_PX : 0),
        }),
        svg("text", { x: width - 8, y: top + 14, "text-anchor": "end" }, phase.name),
      );
      root.append(g);
    });
  }

  const axis = svg("g", { class: "axis" });
  for (const t of order) axis.append(svg("text", { x: 4, y: y(t) + 4 }, fmtOffset(t - t0)));
  root.append(axis);

  for (const lane of model.laneList) {
    const g = svg("g", {
      class: `lane${lane.exported ? "" : " inferred"}`,
      "data-lane": lane.id,
      "data-role": lane.role,
    });
    const cx = x(lane.id);
    g.append(svg("line", { class: "lane-line", x1: cx, x2: cx, y1: TOP_PX, y2: height - 10 }));
    const head = titled(
      svg("g", { class: "lane-head" }),
      `${lane.id} (${lane.members.join(", ") || "?"})${lane.exported ? "" : ": exported no span of this round"}`,
    );
    head.append(
      svg("rect", { x: cx - LANE_PX / 2 + 8, y: 8, width: LANE_PX - 16, height: 40, rx: 4 }),
      svg("text", { x: cx, y: 25, "text-anchor": "middle", "font-weight": 600 }, lane.id),
      svg("text", { x: cx, y: 40, "text-anchor": "middle" }, lane.role),
    );
    g.append(head);
    root.append(g);
  }

  const unit = model.protocol === "paxos" ? ["slot", "slots"] : ["entry", "entries"];
  /** Every label, with the places it may take, nearest first; `placeLabels` picks free ones. */
  const labels = [];
  for (const a of model.arrows) {
    const classes = ["arrow", a.direction];
    if (a.quorum) classes.push("quorum");
    if (a.critical) classes.push("critical");
    if (a.granted === false) classes.push("denied");
    if (a.receivedMs === undefined) classes.push("unarrived");
    const head = a.quorum ? "quorum" : a.critical ? "critical" : a.granted === false ? "denied" : a.direction;
    const x1 = x(a.from);
    const x2 = x(a.to);
    const y1 = y(a.sentMs);
    const y2 = a.receivedMs === undefined ? y1 + STEP_PX / 2 : y(a.receivedMs);
    const latency =
      a.receivedMs === undefined ? "no arrival recorded" : `${fmtMs(a.receivedMs - a.sentMs)} ms in flight`;
    const g = titled(
      svg("g", {
        class: classes.join(" "),
        "data-type": a.type,
        "data-direction": a.direction,
        "data-from": a.from,
        "data-to": a.to,
        "data-quorum": a.quorum,
      }),
      `${a.type}${a.phase === undefined ? "" : ` (${a.phase})`}: ${a.from} → ${a.to}\nsent ${fmtOffset(a.sentMs - t0)}, ${latency}${a.entries === undefined ? "" : `\n${a.entries} entries/slots`}${a.bytes === undefined ? "" : `\n${a.bytes} bytes`}${a.quorum ? "\ncompleted the quorum" : ""}`,
    );
    const x2End = x1 === x2 ? x2 + 30 : x2;
    g.append(svg("line", { x1, y1, x2: x2End, y2, "marker-end": `url(#head-${head})` }));
    const label = [a.type];
    if (a.entries !== undefined) label.push(`${a.entries} ${a.entries === 1 ? unit[0] : unit[1]}`);
    if (a.bytes !== undefined) label.push(fmtBytes(a.bytes));
    const text = svg("text", { class: "label", "text-anchor": "middle" }, label.join(" · "));
    g.append(text);
    // Along the arrow, middle first, just above the line.
    const along = [0.5, 0.35, 0.65, 0.2, 0.8].map((f) => [x1 + (x2End - x1) * f, y1 + (y2 - y1) * f - 4]);
    labels.push({ text, places: along });
    root.append(g);
  }

  for (const m of model.marks) {
    const classes = ["mark", m.kind];
    if (m.critical) classes.push("critical");
    const g = titled(
      svg("g", { class: classes.join(" "), "data-kind": m.kind, "data-lane": m.lane }),
      `${m.label}\n${fmtOffset(m.timeMs - t0)} (${clock(m.timeMs)})`,
    );
    const cx = x(m.lane);
    const cy = y(m.timeMs);
    const text = svg("text", { class: "label" }, m.label);
    g.append(svg("circle", { cx, cy, r: m.kind === "quorum" ? 6 : 4.5 }), text);
    labels.push({ text, places: [[cx + 9, cy + 4]] });
    root.append(g);
  }

  $("#diagram").replaceChildren(root);
  // A label moved down past the last instant makes room for itself.
  const bottom = Math.ceil(placeLabels(labels)) + 10;
  if (bottom > height) {
    root.setAttribute("height", bottom);
    root.setAttribute("viewBox", `0 0 ${width} ${bottom}`);
  }
  window.viewerTimings.roundRenderMs = performance.now() - started;
  window.viewerTimings.roundRenders++;
}

/**
 * Lays labels out so that none overlaps another: each takes the first of its places that is
 * free, else the nearest free one found by moving down and up from them a step at a time.
 * Returns the lowest label's bottom edge.
 * Marks come after arrows in `labels`; a mark label keeps beside its mark, so it is placed first.
 * Widths are read in one pass before anything moves, so the page lays out once.
 */
function placeLabels(labels) {
  const order = [...labels.filter((l) => l.places.length === 1), ...labels.filter((l) => l.places.length > 1)];
  const sizes = order.map(({ text }) => {
    const box = text.getBBox();
    return { dx: box.x - Number(text.getAttribute("x") ?? 0), dy: box.y - Number(text.getAttribute("y") ?? 0), box };
  });
  const taken = [];
  const overlaps = (a) =>
    taken.some(
      (b) =>
        a.x < b.x + b.width + LABEL_GAP_PX &&
        b.x < a.x + a.width + LABEL_GAP_PX &&
        a.y < b.y + b.height + LABEL_GAP_PX &&
        b.y < a.y + a.height + LABEL_GAP_PX,
    );
  order.forEach(({ text, places }, i) => {
    const { dx, dy, box } = sizes[i];
    const boxAt = ([x, y]) => ({ x: x + dx, y: y + dy, width: box.width, height: box.height });
    let chosen = places.find((p) => !overlaps(boxAt(p)));
    for (let step = 1; chosen === undefined; step++) {
      for (const [x, y] of places) {
        chosen = [
          [x, y + step * LABEL_STEP_PX],
          [x, y - step * LABEL_STEP_PX],
        ].find((p) => !overlaps(boxAt(p)));
        if (chosen !== undefined) break;
      }
    }
    text.setAttribute("x", chosen[0]);
    text.setAttribute("y", chosen[1]);
    taken.push(boxAt(chosen));
  });
  return Math.max(0, ...taken.map((b) => b.y + b.height));
}

list.addEventListener("click", (event) => {
  const row = event.target.closest(".row");
  if (row !== null) selectRound(row.dataset.roundId);
});
let scrollPending = false;
list.addEventListener("scroll", () => {
  if (scrollPending) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    const page = state.page;
    const want = visibleWindow();
    // Refetch only when the visible rows run past the fetched ones.
    if (
      page === null ||
      want.offset < page.offset ||
      want.offset + want.limit > page.offset + page.rounds.length + OVERSCAN_ROWS
    )
      refreshList();
  });
});
filters.addEventListener("change", () => {
  list.scrollTop = 0;
  refreshList();
});

async function start() {
  const config = await (await fetch("/api/config")).json();
  state.jaegerUrl = config.jaegerUrl;
  await refreshList();
  const match = /^#round=([0-9a-f]+)$/.exec(location.hash);
  if (match !== null) await selectRound(match[1]);
  setInterval(() => {
    if (filters.elements.live.checked) refreshList();
  }, POLL_MS);
}

start();
