/* creditgraph investigator page: plain JS over the /v1 investigator API and Cytoscape.js.
 *
 * The API key and the session's purpose live in sessionStorage (this tab only); every request
 * sends them as `Authorization: Bearer` and `X-Purpose`, so each look-up is audited. Text from
 * the API is only ever inserted as text (never as HTML).
 */
"use strict";

(() => {
  const KEY = "creditgraph.key";
  const PURPOSE = "creditgraph.purpose";
  const RISK_COLOURS = { high: "#d64545", elevated: "#e8a317", low: "#2f9e44", unscored: "#9aa5b1" };
  const RELATION_COLOURS = { TRANSFER: "#3b82f6", FRIEND: "#8b5cf6", SHARES_DEVICE: "#ec4899" };
  const EXTRA_COLOURS = ["#14b8a6", "#a16207", "#64748b", "#db2777", "#0891b2", "#65a30d"];
  const STATUSES = ["new", "investigating", "confirmed", "dismissed"];
  const QUEUE_PAGE = 25;

  const state = {
    key: sessionStorage.getItem(KEY) || "",
    purpose: sessionStorage.getItem(PURPOSE) || "",
    queue: { offset: 0, total: 0 },
    ringId: null,
    ring: null,
    accountId: null,
    transfers: { offset: 0, counterparty: "" },
    relations: new Set(["TRANSFER", "FRIEND", "SHARES_DEVICE"]),
    enabled: new Set(["TRANSFER", "FRIEND", "SHARES_DEVICE"]),
  };
  let cy = null;

  // -- small helpers ----------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "style") node.setAttribute("style", v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const fmtNumber = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });
  const fmtProb = (p) => (p === null || p === undefined ? "–" : (100 * p).toFixed(1) + " %");
  const fmtCredit = (c) => (c === null || c === undefined ? "–" : c.toFixed(1));
  const fmtAmount = (a, cur) => fmtNumber.format(a) + (cur ? " " + cur : "");
  function fmtTime(ts) {
    if (ts === null || ts === undefined || !isFinite(ts) || ts <= 0) return "–";
    return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }
  const riskOf = (p) => (p === null || p === undefined ? "unscored" : p >= 0.5 ? "high" : p >= 0.2 ? "elevated" : "low");

  function relationColour(rel) {
    if (RELATION_COLOURS[rel]) return RELATION_COLOURS[rel];
    let h = 0;
    for (const ch of rel) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return EXTRA_COLOURS[h % EXTRA_COLOURS.length];
  }

  let toastTimer = null;
  function toast(message, isError) {
    const t = $("toast");
    t.textContent = message;
    t.className = "toast" + (isError ? " error" : "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 3500);
  }

  function setStatus(...parts) {
    const s = $("graph-status");
    s.replaceChildren(...parts);
  }

  // -- API ----------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, { method = "GET", params = {}, body, key, purpose } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(params)) {
      if (v === null || v === undefined || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
    }
    const headers = {
      Authorization: "Bearer " + (key || state.key),
      "X-Purpose": purpose || state.purpose,
      Accept: "application/json",
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!res.ok) {
      let message = res.status + " " + res.statusText;
      try { message = (await res.json()).error.message || message; } catch (_) { /* not JSON */ }
      if (res.status === 401 && !key) signOut("Your key was refused: " + message);
      throw new ApiError(res.status, message);
    }
    return res.json();
  }

  function failed(err) {
    toast(err.message || String(err), true);
    setStatus(el("span", { class: "warn" }, err.message || String(err)));
  }

  // -- sign in / out ------------------------------------------------------------------------------
  async function signIn(event) {
    event.preventDefault();
    const key = $("signin-key").value.trim();
    const purpose = $("signin-purpose").value.trim();
    const error = $("signin-error");
    error.hidden = true;
    try {
      await api("/v1/rings", { params: { limit: 1 }, key, purpose });
    } catch (err) {
      error.textContent = err.status === 403
        ? "This key's role cannot use the investigator page (needs investigator or admin)."
        : err.status === 401 ? "Unknown or revoked key." : err.message;
      error.hidden = false;
      return;
    }
    state.key = key;
    state.purpose = purpose;
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(PURPOSE, purpose);
    start();
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    state.key = "";
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-purpose").value = state.purpose;
    const error = $("signin-error");
    error.hidden = !message;
    error.textContent = message || "";
  }

  function start() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("purpose").value = state.purpose;
    $("whoami").textContent = "key " + (state.key.split("_")[1] || "?");
    if (!cy) initGraph();
    renderRelationFilter();
    loadQueue();
  }

  // -- ring queue ---------------------------------------------------------------------------------
  function queueParams() {
    const status = $("filter-status").value;
    return {
      status: status === "open" ? ["new", "investigating"] : status,
      kind: $("filter-kind").value,
      min_score: Number($("filter-min-score").value) > 0 ? $("filter-min-score").value : "",
      limit: QUEUE_PAGE,
      offset: state.queue.offset,
    };
  }

  async function loadQueue() {
    let page;
    try {
      page = await api("/v1/rings", { params: queueParams() });
    } catch (err) { failed(err); return; }
    state.queue.total = page.total;
    $("queue-total").textContent = page.total + (page.total === 1 ? " ring" : " rings");
    const first = page.total ? page.offset + 1 : 0;
    $("queue-range").textContent = `${first}–${page.offset + page.items.length} of ${page.total}`;
    $("queue-prev").disabled = page.offset === 0;
    $("queue-next").disabled = page.offset + page.items.length >= page.total;
    const list = $("queue-list");
    list.replaceChildren(...page.items.map(queueItem));
    if (!page.items.length) list.append(el("li", { class: "muted empty" }, "No rings match these filters."));
  }

  function queueItem(r) {
    const colour = RISK_COLOURS[riskOf(r.score)];
    return el("li", {
      class: "queue-item" + (r.ring_id === state.ringId ? " active" : ""),
      dataset: { ringId: r.ring_id },
      "data-testid": "queue-item",
      onclick: () => openRing(r.ring_id),
    },
    el("div", { class: "queue-row" },
      el("span", { class: "queue-id" }, r.ring_id),
      el("span", { class: "badge status-" + r.status }, r.status)),
    el("div", { class: "scorebar", title: "ring score " + r.score.toFixed(2) },
      el("span", { style: `width:${Math.round(100 * r.score)}%;background:${colour}` })),
    el("div", { class: "queue-row queue-meta" },
      el("span", {}, `${r.kind.replace(/_/g, " ")} · ${r.size} members`),
      el("span", {}, "score " + r.score.toFixed(2))),
    el("div", { class: "queue-row queue-meta" },
      el("span", {}, "highest member risk"),
      el("span", { class: "badge risk-" + riskOf(r.max_member_risk) }, fmtProb(r.max_member_risk))));
  }

  // -- graph --------------------------------------------------------------------------------------
  function initGraph() {
    cy = cytoscape({
      container: $("cy"),
      minZoom: 0.1,
      maxZoom: 3,
      style: [
        { selector: "node", style: {
          "background-color": "data(colour)", width: "data(size)", height: "data(size)",
          label: "data(label)", "font-size": 9, color: "#334155", "text-valign": "bottom",
          "text-margin-y": 3, "text-background-color": "#fff", "text-background-opacity": 0.75,
          "text-background-padding": 1, "border-width": 1.5, "border-color": "#ffffff" } },
        { selector: "node.ring-member", style: { "border-width": 3, "border-color": "#c4b5fd" } },
        { selector: "node.in-ring", style: { "border-width": 5, "border-color": "#7c3aed" } },
        { selector: "node.hub", style: { shape: "diamond" } },
        { selector: "node.capped", style: { "border-style": "double", "border-width": 6, "border-color": "#475569" } },
        // An account over the hub threshold: drawn with its counts, not walked through.
        { selector: "node.degree-hub", style: { "border-style": "dashed", "border-width": 5, "border-color": "#b45309" } },
        { selector: "node.center", style: { "font-weight": "bold", "font-size": 11 } },
        { selector: "node.path", style: { "border-width": 5, "border-color": "#0ea5b7" } },
        { selector: "node:selected", style: { "overlay-color": "#2457c5", "overlay-opacity": 0.18, "overlay-padding": 6 } },
        { selector: "edge", style: {
          width: "data(width)", "line-color": "data(colour)", "curve-style": "bezier", opacity: 0.65,
          "target-arrow-color": "data(colour)", "arrow-scale": 0.8 } },
        { selector: "edge[?directed]", style: { "target-arrow-shape": "triangle" } },
        { selector: "edge[!directed]", style: { "line-style": "dashed", "line-dash-pattern": [5, 3] } },
        { selector: "edge.evidence", style: {
          "line-color": "#ff7a00", "target-arrow-color": "#ff7a00", width: "mapData(width, 1, 6, 3.5, 7)",
          opacity: 1, "z-index": 10 } },
        { selector: "edge.path", style: {
          "line-color": "#0ea5b7", "target-arrow-color": "#0ea5b7", width: 6, opacity: 1, "z-index": 20 } },
        { selector: ".faded", style: { opacity: 0.15 } },
      ],
    });
    cy.on("tap", "node", (evt) => {
      const id = evt.target.id();
      showAccount(id);
      expand(id);
    });
    window.cy = cy; // for the browser tests and the console
  }

  function nodeData(n) {
    const risk = n.risk || riskOf(n.fraud_probability);
    return {
      id: n.id, label: n.id, risk, colour: RISK_COLOURS[risk] || RISK_COLOURS.unscored,
      size: n.fraud_probability === null || n.fraud_probability === undefined ? 20 : 20 + 22 * n.fraud_probability,
      fraud_probability: n.fraud_probability, social_credit: n.social_credit, rings: n.rings || [],
    };
  }

  function edgeData(e) {
    const width = e.relation === "TRANSFER" ? Math.min(6, 1.2 + Math.log2(1 + (e.count || 1))) : 1.6;
    return {
      id: e.id, source: e.source, target: e.target, relation: e.relation, directed: e.directed,
      count: e.count, total_amount: e.total_amount, colour: relationColour(e.relation), width,
    };
  }

  /** Merge graph JSON into the drawing; returns the nodes that were new. */
  function addGraph(graph, { near } = {}) {
    const added = [];
    const origin = near && cy.$id(near).nonempty() ? cy.$id(near).position() : null;
    cy.batch(() => {
      for (const n of graph.nodes) {
        const existing = cy.$id(n.id);
        const data = nodeData(n);
        if (existing.nonempty()) {
          existing.data(Object.assign({}, data, { label: existing.data("label") }));
        } else {
          const pos = origin
            ? { x: origin.x + (Math.random() - 0.5) * 120, y: origin.y + (Math.random() - 0.5) * 120 }
            : undefined;
          added.push(cy.add({ group: "nodes", data, position: pos }));
        }
        const node = cy.$id(n.id);
        node.toggleClass("ring-member", (n.rings || []).length > 0);
        if (n.capped) node.addClass("capped").data("label", `${n.id} (${moreLabel(n)})`);
        if (n.hub) node.addClass("degree-hub");
      }
      for (const e of graph.edges || []) {
        if (cy.$id(e.id).empty() && cy.$id(e.source).nonempty() && cy.$id(e.target).nonempty()) {
          const edge = cy.add({ group: "edges", data: edgeData(e) });
          if (e.evidence) edge.addClass("evidence");
        }
        if (!state.relations.has(e.relation)) {
          // A relation seen for the first time is shown until the investigator hides it.
          state.relations.add(e.relation);
          state.enabled.add(e.relation);
        }
      }
    });
    renderRelationFilter();
    applyRelationFilter();
    return added;
  }

  async function layout(fit = true) {
    if (!cy.nodes().length) return;
    const l = cy.layout({
      name: "cose", animate: false, randomize: false, fit, padding: 40,
      nodeRepulsion: () => 9000, idealEdgeLength: () => 70, nodeOverlap: 12, numIter: 1200,
    });
    const done = l.promiseOn("layoutstop");
    l.run();
    await done;
    if (fit) fitView();
  }

  /** Fit everything (or ``eles``), but never zoom in so far that a small ring looks bloated. */
  function fitView(eles) {
    cy.fit(eles, 50);
    if (cy.zoom() > 1.6) {
      cy.zoom(1.6);
      cy.center(eles);
    }
  }

  /** "+N more" per relation, from the view's ``more`` (relationships it does not draw). */
  function moreLabel(n) {
    const more = Object.entries(n.more || {});
    if (!more.length) return `${n.capped} relationships`;
    return more.map(([rel, k]) => `+${k.toLocaleString()} ${rel}`).join(", ") + " more";
  }

  const expandLimit = () => Math.max(1, Math.min(200, Number($("expand-limit").value) || 15));

  async function expand(id, { throughHubs = false } = {}) {
    setStatus("Loading neighbours of " + id + "…");
    let g;
    try {
      g = await api(`/v1/accounts/${encodeURIComponent(id)}/neighbourhood`, {
        params: {
          hops: $("expand-hops").value, limit: expandLimit(), relations: relationParam(),
          through_hubs: throughHubs ? "true" : null,
        },
      });
    } catch (err) { failed(err); return; }
    const fresh = addGraph(g, { near: id });
    cy.$id(id).addClass("expanded");
    await layout(cy.nodes().length < 40 || fresh.length > 10);
    const added = fresh.filter((n) => n.id() !== id).length;
    const parts = [`${id}: ${g.nodes.length - 1} neighbours shown, ${added} new.`];
    const summarised = g.summarised || [];
    // Hubs not walked through are explained below; the rest had more than the limit.
    const capped = Object.entries(g.capped || {}).filter(([n]) => !summarised.includes(n));
    if (capped.length) {
      parts.push(" ", el("span", { class: "warn", "data-testid": "truncated" },
        "Truncated: " + capped.map(([n, total]) => `${n} has ${total.toLocaleString()} relationships`).join(", ") +
        ` (strongest ${g.limit} per account shown).`));
    }
    if (summarised.length) {
      // Why the view stops at a hub, and the way to go on anyway.
      parts.push(" ", el("span", { class: "warn", "data-testid": "hubs-summarised" },
        `Not walked through ${summarised.length === 1 ? "a hub" : "hubs"}: ${summarised.join(", ")} ` +
        `(over ${g.hub_degree.toLocaleString()} relationships; their neighbours would crowd out the rest). `),
        el("button", { type: "button", class: "ghost", "data-testid": "through-hubs",
          onclick: () => expand(id, { throughHubs: true }) }, "Expand through hubs"));
    }
    setStatus(...parts);
    $("graph-title").textContent = state.ring ? `Ring ${state.ring.ring_id} and neighbours` : `Neighbourhood of ${g.center}`;
  }

  function relationParam() {
    if ([...state.relations].every((r) => state.enabled.has(r))) return null;
    return [...state.enabled];
  }

  function renderRelationFilter() {
    const box = $("relation-filter");
    const legend = $("legend-relations");
    const rels = [...state.relations].sort();
    box.replaceChildren(...rels.map((r) => el("label", { title: "Show " + r },
      el("input", {
        type: "checkbox", checked: state.enabled.has(r), dataset: { relation: r },
        onchange: (ev) => { ev.target.checked ? state.enabled.add(r) : state.enabled.delete(r); applyRelationFilter(); },
      }), r)));
    legend.replaceChildren(...rels.map((r) => el("span", {},
      el("i", { class: "line", style: `border-color:${relationColour(r)}` }), r)));
  }

  function applyRelationFilter() {
    if (!cy) return;
    cy.edges().forEach((e) => { e.style("display", state.enabled.has(e.data("relation")) ? "element" : "none"); });
  }

  function clearGraph() {
    cy.elements().remove();
    setStatus();
    $("graph-title").textContent = "Pick a ring or open an account";
  }

  function highlightRing(ring) {
    cy.nodes().removeClass("in-ring hub");
    cy.edges().removeClass("evidence");
    if (!ring) return;
    for (const m of ring.members) cy.$id(m.id).addClass("in-ring");
    for (const h of (ring.evidence && ring.evidence.hubs) || []) cy.$id(h).addClass("hub");
    for (const e of ring.evidence_edges) {
      for (const id of [`${e.source}|${e.target}|${e.relation}`, `${e.target}|${e.source}|${e.relation}`]) {
        const edge = cy.$id(id);
        if (edge.nonempty() && (id.startsWith(e.source + "|") || !edge.data("directed"))) edge.addClass("evidence");
      }
    }
  }

  // -- ring view ----------------------------------------------------------------------------------
  async function openRing(ringId) {
    let ring;
    setStatus("Loading ring " + ringId + "…");
    try {
      ring = await api(`/v1/rings/${encodeURIComponent(ringId)}`);
    } catch (err) { failed(err); return; }
    state.ringId = ringId;
    state.ring = ring;
    for (const li of document.querySelectorAll(".queue-item")) li.classList.toggle("active", li.dataset.ringId === ringId);
    clearGraph();
    addGraph({ nodes: ring.members, edges: ring.edges });
    highlightRing(ring);
    await layout(true);
    $("graph-title").textContent = `Ring ${ring.ring_id} · ${ring.kind.replace(/_/g, " ")} · ${ring.size} members`;
    const flagged = cy.edges(".evidence").length;
    setStatus(`${ring.size} members, ${ring.edges.length} edges among them, ${flagged} named by the evidence. ` +
      "Click an account to expand its neighbours.");
    renderRing(ring);
    selectTab("ring");
  }

  function renderRing(ring) {
    const body = $("tab-ring");
    const risks = ring.members.map((m) => m.fraud_probability).filter((p) => p !== null && p !== undefined);
    const maxRisk = risks.length ? Math.max(...risks) : null;
    const evidence = ring.evidence || {};
    body.replaceChildren(
      el("div", { class: "entity-head" },
        el("span", { class: "entity-id", "data-testid": "ring-id" }, ring.ring_id),
        el("span", { class: "badge status-" + ring.status, "data-testid": "ring-status" }, ring.status)),
      el("div", { class: "muted" }, `${ring.kind.replace(/_/g, " ")} · detected ${fmtTime(ring.detected_at)}`),
      el("div", { class: "kpis" },
        kpi("Ring score", ring.score.toFixed(2), RISK_COLOURS[riskOf(ring.score)], ring.score, "how strongly the structure looks like fraud"),
        kpi("Highest member risk", fmtProb(maxRisk), RISK_COLOURS[riskOf(maxRisk)], maxRisk || 0, `${ring.size} members`)),
      verdictForm(ring),
      el("h3", {}, "Members"),
      membersTable(ring.members),
      el("h3", {}, "Evidence"),
      evidenceBlock(evidence, ring.evidence_edges),
      el("h3", {}, `Timeline (${ring.timeline.length} transfers among members)`),
      transfersTable(ring.timeline.slice().reverse(), null),
    );
  }

  function kpi(label, value, colour, fraction, sub) {
    return el("div", { class: "kpi" },
      el("div", { class: "kpi-label" }, label),
      el("div", { class: "kpi-value", style: `color:${colour}` }, value),
      el("div", { class: "gauge" }, el("span", { style: `width:${Math.round(100 * Math.max(0, Math.min(1, fraction)))}%;background:${colour}` })),
      sub ? el("div", { class: "kpi-sub" }, sub) : null);
  }

  function verdictForm(ring) {
    let chosen = ring.status;
    const buttons = STATUSES.map((s) => el("button", {
      type: "button", class: s === chosen ? "selected" : "", dataset: { status: s }, "data-testid": "status-" + s,
      onclick: (ev) => {
        chosen = s;
        for (const b of ev.target.parentElement.children) b.classList.toggle("selected", b.dataset.status === s);
      },
    }, s));
    const note = el("textarea", { placeholder: "Note for the case file (why this verdict)", "data-testid": "ring-note", maxlength: 2000 });
    note.value = ring.note || "";
    const save = el("button", {
      type: "button", class: "primary", "data-testid": "ring-save",
      onclick: async () => {
        save.disabled = true;
        try {
          const updated = await api(`/v1/rings/${encodeURIComponent(ring.ring_id)}`, {
            method: "PATCH", body: { status: chosen, note: note.value },
          });
          toast(`Ring ${ring.ring_id} is now ${updated.status}.`);
          await openRing(ring.ring_id);
          await loadQueue();
        } catch (err) { failed(err); } finally { save.disabled = false; }
      },
    }, "Save verdict");
    return el("div", { class: "verdict", "data-testid": "verdict" },
      el("div", { class: "kpi-label" }, "Status and verdict"),
      el("div", { class: "verdict-buttons" }, buttons),
      note,
      el("div", { class: "hint" }, "Confirmed and dismissed verdicts become training labels for the members (fraud / legit)."),
      el("div", {}, save));
  }

  function membersTable(members) {
    return el("table", { class: "grid", "data-testid": "members" },
      el("thead", {}, el("tr", {}, el("th", {}, "Account"), el("th", {}, "Risk"), el("th", { class: "num" }, "Fraud p"),
        el("th", { class: "num" }, "Credit"), el("th", {}, "Other rings"))),
      el("tbody", {}, members.map((m) => el("tr", {
        class: "clickable", dataset: { accountId: m.id },
        onclick: () => { focusNode(m.id); showAccount(m.id); },
      },
      el("td", { class: "mono" }, m.id),
      el("td", {}, el("span", { class: "badge risk-" + m.risk }, m.risk)),
      el("td", { class: "num" }, fmtProb(m.fraud_probability)),
      el("td", { class: "num" }, fmtCredit(m.social_credit)),
      el("td", {}, (m.rings || []).filter((r) => r !== state.ringId).join(", ") || "–")))));
  }

  function evidenceBlock(evidence, edges) {
    const parts = [];
    if (evidence.patterns && evidence.patterns.length) {
      parts.push(el("div", { class: "chips" }, evidence.patterns.map((p) => el("span", { class: "chip" }, p))));
    }
    if (evidence.features && Object.keys(evidence.features).length) {
      parts.push(el("dl", { class: "attrs", style: "margin-top:8px" },
        Object.entries(evidence.features).flatMap(([k, v]) => [el("dt", {}, k.replace(/_/g, " ")), el("dd", {}, v === null ? "–" : fmtNumber.format(v))])));
    }
    if (evidence.cycles && evidence.cycles.length) {
      parts.push(el("div", { style: "margin-top:8px" }, el("b", {}, "Money cycles: "),
        evidence.cycles.slice(0, 5).map((c) => el("div", { class: "mono" }, [...c, c[0]].join(" → ")))));
    }
    if (evidence.hubs && evidence.hubs.length) {
      parts.push(el("div", { style: "margin-top:8px" }, el("b", {}, "Hubs (◆ in the graph): "), evidence.hubs.join(", ")));
    }
    if (evidence.shared_links && evidence.shared_links.length) {
      parts.push(el("div", { style: "margin-top:8px" }, el("b", {}, `Shared identifiers: ${evidence.shared_links.length} links`),
        el("div", { class: "mono hint" }, evidence.shared_links.slice(0, 8).map((l) => `${l.a} ⟷ ${l.b} (${l.type})`).join(" · "))));
    }
    parts.push(el("div", { class: "hint" }, `${edges.length} evidence pairs, drawn in orange in the graph.`));
    return el("div", { "data-testid": "evidence" }, parts);
  }

  function transfersTable(items, self) {
    if (!items.length) return el("p", { class: "muted" }, "No transfers.");
    return el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, self ? "Counterparty" : "From → to"), el("th", { class: "num" }, "Amount"), el("th", {}, "Channel"))),
      el("tbody", {}, items.map((t) => {
        let who;
        if (self) {
          const out = t.src === self;
          const other = out ? t.dst : t.src;
          who = el("span", {}, out ? "→ " : "← ", accountLink(other));
        } else {
          who = el("span", {}, accountLink(t.src), " → ", accountLink(t.dst));
        }
        return el("tr", {}, el("td", {}, fmtTime(t.timestamp)), el("td", { class: "mono" }, who),
          el("td", { class: "num" }, fmtAmount(t.amount, t.currency)), el("td", {}, t.channel || "–"));
      })));
  }

  function accountLink(id) {
    return el("button", { class: "link mono", type: "button", onclick: (ev) => { ev.stopPropagation(); focusNode(id); showAccount(id); } }, id);
  }

  function focusNode(id) {
    const n = cy.$id(id);
    if (n.empty()) return;
    cy.nodes().unselect();
    n.select();
    cy.animate({ center: { eles: n }, duration: 250 });
  }

  // -- account view -------------------------------------------------------------------------------
  async function showAccount(id, { transfersOffset = 0, counterparty = "", since = "", until = "" } = {}) {
    let account, transfers;
    try {
      [account, transfers] = await Promise.all([
        api(`/v1/accounts/${encodeURIComponent(id)}`),
        api(`/v1/accounts/${encodeURIComponent(id)}/transfers`, {
          params: {
            limit: 10, offset: transfersOffset, counterparty,
            since: since ? since + "T00:00:00Z" : "", until: until ? until + "T23:59:59Z" : "",
          },
        }),
      ]);
    } catch (err) { failed(err); return; }
    state.accountId = id;
    state.transfers = { offset: transfersOffset, counterparty, since, until };
    renderAccount(account, transfers);
    selectTab("account");
  }

  function renderAccount(a, transfers) {
    const s = a.score;
    const risk = s ? s.risk : "unscored";
    const body = $("tab-account");
    body.replaceChildren(
      el("div", { class: "entity-head" },
        el("span", { class: "entity-id", "data-testid": "account-id" }, a.account_id),
        el("span", {},
          a.label ? el("span", { class: "badge label-" + a.label, title: "confirmed outcome" }, a.label) : null, " ",
          el("span", { class: "badge risk-" + risk }, risk))),
      el("div", { class: "muted" }, s ? `model ${s.model_version} · scored ${fmtTime(s.scored_at)}` : "not scored yet"),
      el("div", { class: "kpis" },
        kpi("Fraud probability", fmtProb(s && s.fraud_probability), RISK_COLOURS[risk], s ? s.fraud_probability : 0, "all evidence"),
        kpi("Social credit", s ? fmtCredit(s.social_credit) : "–", s ? creditColour(s.social_credit) : RISK_COLOURS.unscored,
          s ? s.social_credit / 100 : 0, "relationships only, 0–100")),
      el("div", { style: "display:flex;gap:6px;margin-top:10px;flex-wrap:wrap" },
        el("button", { type: "button", onclick: () => { if (cy.$id(a.account_id).empty()) addGraph({ nodes: [{ id: a.account_id, fraud_probability: s && s.fraud_probability, risk, rings: a.rings.map((r) => r.ring_id) }], edges: [] }); expand(a.account_id); } }, "Expand in graph"),
        el("button", { type: "button", onclick: () => { $("path-from").value = a.account_id; selectTab("paths"); } }, "Path from here"),
        el("button", { type: "button", onclick: () => { $("path-to").value = a.account_id; selectTab("paths"); } }, "Path to here")),
      el("h3", {}, "Why this fraud probability"),
      reasonsList(a.reasons, "No stored reasons (the account has not been scored in batch yet)."),
      a.ties.length ? el("h3", {}, "Ties that drive it") : null,
      a.ties.length ? reasonsList(a.ties, null, "ties") : null,
      a.ties.length ? el("div", { class: "hint" }, "The serving model's attribution to direct ties; click one to open that account.") : null,
      el("h3", {}, "Social credit, explained"),
      el("div", { class: "explain", "data-testid": "social-explanation" }, a.social_credit_explanation.summary),
      reasonsList(a.social_credit_explanation.reasons, null),
      el("div", { class: "hint" }, "Definition and caveats: ", el("code", {}, a.social_credit_explanation.definition)),
      el("h3", {}, "Rings"),
      a.rings.length
        ? el("div", { class: "chips" }, a.rings.map((r) => el("span", { class: "chip", onclick: () => openRing(r.ring_id), title: `${r.kind}, score ${r.score.toFixed(2)}` },
          `${r.ring_id} · ${r.status}`)))
        : el("p", { class: "muted" }, "Not in any detected ring."),
      el("h3", {}, `Transfers (${a.transfers})`),
      transfersBlock(a.account_id, transfers),
      el("h3", {}, "Attributes"),
      el("dl", { class: "attrs" },
        el("dt", {}, "created"), el("dd", {}, fmtTime(a.created_at)),
        Object.entries(a.features).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, fmtNumber.format(v))]),
        Object.entries(a.properties).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    );
  }

  function creditColour(c) { return c >= 90 ? RISK_COLOURS.low : c >= 60 ? RISK_COLOURS.elevated : RISK_COLOURS.high; }

  function reasonsList(reasons, emptyText, testid = "reasons") {
    if (!reasons.length) return emptyText ? el("p", { class: "muted" }, emptyText) : null;
    const top = Math.max(...reasons.map((r) => Math.abs(r.weight || 0)), 1e-9);
    return el("ul", { class: "reasons", "data-testid": testid }, reasons.map((r) => {
      const w = r.weight || 0;
      const pct = Math.round(50 * Math.abs(w) / top);
      const other = r.evidence && r.evidence.account_id;
      return el("li", {
        class: "reason" + (other ? " clickable" : ""), title: `${r.code} · weight ${w.toFixed(3)} (logit units)`,
        onclick: other ? () => { focusNode(other); showAccount(other); } : null,
      },
        el("span", {}, r.message),
        el("span", { class: "reason-bar" }, w ? el("span", { class: w > 0 ? "up" : "down", style: `width:${pct}%` }) : null));
    }));
  }

  function transfersBlock(id, page) {
    const t = state.transfers;
    const filter = el("input", {
      type: "search", placeholder: "counterparty id", value: t.counterparty || "",
      "data-testid": "transfers-counterparty",
    });
    const since = el("input", { type: "date", value: t.since || "", title: "from (UTC day)", "aria-label": "from" });
    const until = el("input", { type: "date", value: t.until || "", title: "until (UTC day, inclusive)", "aria-label": "until" });
    const reload = (offset) => showAccount(id, {
      transfersOffset: offset, counterparty: filter.value.trim(), since: since.value, until: until.value,
    });
    for (const input of [filter, since, until]) input.addEventListener("change", () => reload(0));
    const end = page.offset + page.items.length;
    return el("div", { "data-testid": "transfers" },
      el("div", { class: "transfer-filters" }, filter, since, "–", until),
      el("div", { style: "display:flex;justify-content:flex-end;align-items:center;margin-bottom:6px" },
        el("span", { class: "muted", style: "font-size:12px" }, `${page.total ? page.offset + 1 : 0}–${end} of ${page.total}`,
          el("button", { type: "button", class: "ghost", disabled: page.offset === 0, onclick: () => reload(Math.max(0, page.offset - page.limit)) }, "‹"),
          el("button", { type: "button", class: "ghost", disabled: end >= page.total, onclick: () => reload(end) }, "›"))),
      transfersTable(page.items, id));
  }

  // -- path finder --------------------------------------------------------------------------------
  const CUT_SHORT = {
    deadline: "the search ran out of time",
    frontier: "the search reached too many accounts",
    hubs: "hubs were not walked through",
    fanout: "only the strongest ties of each account were followed",
    paths: "there were more shortest paths than were listed",
  };

  /** Why a path search may have missed paths, with a way to search through hubs. */
  function cutShortNote(res, from, to) {
    if (res.complete) return null;
    const why = res.cut_short.map((c) => CUT_SHORT[c] || c).join("; ");
    const hubs = res.hubs_skipped.length ? ` (hubs: ${res.hubs_skipped.join(", ")})` : "";
    return el("p", { class: "warn", "data-testid": "path-cut-short" }, `Search cut short: ${why}${hubs}. `,
      res.hubs_skipped.length && !res.through_hubs
        ? el("button", { type: "button", class: "ghost", onclick: () => findPaths(null, { throughHubs: true }) }, "Search through hubs")
        : null);
  }

  async function findPaths(event, { throughHubs = false } = {}) {
    if (event) event.preventDefault();
    const from = $("path-from").value.trim();
    const to = $("path-to").value.trim();
    const out = $("path-results");
    out.replaceChildren(el("p", { class: "muted" }, "Searching…"));
    let res;
    try {
      res = await api("/v1/paths", {
        params: { from, to, max_hops: $("path-max-hops").value, through_hubs: throughHubs ? "true" : null },
      });
    } catch (err) { out.replaceChildren(el("p", { class: "error" }, err.message)); return; }
    if (!res.found) {
      out.replaceChildren(el("p", { class: "muted", "data-testid": "path-none" }, `No path of at most ${res.max_hops} hops between ${from} and ${to}.`),
        cutShortNote(res, from, to) || "");
      return;
    }
    cy.elements().removeClass("path");
    const fresh = addGraph({ nodes: res.nodes, edges: res.edges });
    for (const n of res.nodes) cy.$id(n.id).addClass("path");
    for (const e of res.edges) cy.$id(e.id).addClass("path");
    if (state.ring) highlightRing(state.ring);
    await layout(fresh.length > 0);
    // A small drawing stays whole; in a large one, zoom to the paths.
    fitView(cy.nodes().length > 80 ? cy.elements(".path") : undefined);
    $("graph-title").textContent = `Paths ${from} → ${to}`;
    setStatus(`${res.paths.length} shortest path(s) of ${res.length} hop(s), highlighted in teal.`);
    out.replaceChildren(
      el("p", {}, el("b", {}, `${res.paths.length} shortest path(s)`), ` of ${res.length} hop(s).`),
      cutShortNote(res, from, to) || "",
      ...res.paths.map((p) => el("div", { class: "path-card", "data-testid": "path-card" },
        el("div", { class: "path-seq mono" }, p.accounts.flatMap((a, i) => (i ? [" → ", accountLink(a)] : [accountLink(a)]))),
        p.hops.map((h) => el("div", { class: "path-hop" },
          el("div", {}, el("span", { class: "mono" }, `${h.from} — ${h.to}`), " ", h.relations.map((r) =>
            el("span", { class: "badge", style: `background:${relationColour(r)}22;color:${relationColour(r)}` }, r))),
          h.transfers.length
            ? el("div", { class: "hint" }, `${h.transfers_total} transfer(s), latest: ` + h.transfers.slice(0, 3).map((t) =>
              `${t.src}→${t.dst} ${fmtAmount(t.amount, t.currency)} on ${fmtTime(t.timestamp)}`).join("; "))
            : null)))));
  }

  // -- tabs and wiring ----------------------------------------------------------------------------
  // -- review queue (transfers answered "review") -------------------------------------------------
  async function loadReviews() {
    let page;
    try {
      page = await api("/v1/reviews", { params: { status: "open", limit: 50 } });
    } catch (err) { failed(err); return; }
    const list = $("review-list");
    list.replaceChildren(...page.items.map(reviewItem));
    if (!page.items.length) list.append(el("li", { class: "muted empty", "data-testid": "reviews-empty" }, "No transfers waiting for review."));
  }

  function reviewItem(r) {
    const note = el("textarea", { placeholder: "Note (why this verdict)", maxlength: 2000, "data-testid": "review-note" });
    const send = (verdict) => async (ev) => {
      ev.target.disabled = true;
      try {
        await api(`/v1/reviews/${encodeURIComponent(r.review_id)}`, { method: "POST", body: { verdict, note: note.value } });
        toast(`Transfer ${r.transfer_id} ${verdict}: recorded as a transfer label.`);
        await loadReviews();
      } catch (err) { failed(err); ev.target.disabled = false; }
    };
    return el("li", { class: "queue-item", "data-testid": "review-item", dataset: { reviewId: r.review_id } },
      el("div", { class: "queue-row" },
        el("span", { class: "queue-id mono" }, r.transfer_id),
        el("span", { class: "badge risk-" + riskOf(r.risk) }, "P(fraud) " + fmtProb(r.risk))),
      el("div", { class: "queue-row queue-meta" },
        el("span", {}, accountLink(r.src), " → ", accountLink(r.dst)),
        el("span", { "data-testid": "review-amount" }, r.amount.toFixed(2))),
      el("div", { class: "queue-row queue-meta" },
        el("span", {}, fmtTime(r.timestamp)), el("span", {}, "model " + r.model_version)),
      reasonsList(r.reasons, "No reasons recorded.", "review-reasons"),
      note,
      el("div", { class: "verdict-buttons" },
        el("button", { type: "button", class: "primary", "data-testid": "review-approve", onclick: send("approved") }, "Approve"),
        el("button", { type: "button", "data-testid": "review-reject", onclick: send("rejected") }, "Reject as fraud")));
  }

  function selectTab(name) {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.tab === name);
    for (const b of document.querySelectorAll(".tab-body")) b.hidden = b.id !== "tab-" + name;
    if (name === "reviews") loadReviews();
  }

  function wire() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut());
    $("purpose").addEventListener("change", (ev) => {
      const v = ev.target.value.trim();
      if (!v) { ev.target.value = state.purpose; toast("A purpose is required for every look-up.", true); return; }
      state.purpose = v;
      sessionStorage.setItem(PURPOSE, v);
      toast("Purpose updated: later look-ups are audited with it.");
    });
    for (const id of ["filter-status", "filter-kind", "filter-min-score"]) {
      $(id).addEventListener("change", () => { state.queue.offset = 0; loadQueue(); });
    }
    $("queue-filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("queue-prev").addEventListener("click", () => { state.queue.offset = Math.max(0, state.queue.offset - QUEUE_PAGE); loadQueue(); });
    $("queue-next").addEventListener("click", () => { state.queue.offset += QUEUE_PAGE; loadQueue(); });
    $("graph-fit").addEventListener("click", () => fitView());
    $("graph-clear").addEventListener("click", () => { state.ring = null; state.ringId = null; clearGraph(); });
    $("open-account").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const id = $("open-account-id").value.trim();
      if (!id) return;
      await showAccount(id);
      if (state.accountId === id) {
        if (cy.$id(id).empty()) { state.ring = null; state.ringId = null; clearGraph(); }
        await expand(id);
        focusNode(id);
      }
    });
    $("path-form").addEventListener("submit", findPaths);
    for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => selectTab(t.dataset.tab));
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    if (state.key && state.purpose) start();
    else signOut();
  });
})();
