"use strict";
// The live dashboard. Everything it shows comes from the API of the box
// that served it; the stream (/api/v1/stream) pushes each tick's summary,
// the flow chart and the history are fetched when they may have changed.
// Every string from the network goes into the page as text (textContent),
// never as markup.

(function () {
  const HISTORY_SECS = 300;
  const COLORS = ["#2364d2", "#d2762e", "#1f8a4c", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b"];
  const $ = (id) => document.getElementById(id);

  // A token passed as #token=… is kept for this tab only and taken out of
  // the address bar (and so out of bookmarks and screenshots).
  (function takeToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("ta-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  })();

  function headers() {
    const t = sessionStorage.getItem("ta-token");
    return t ? { Authorization: "Bearer " + t } : {};
  }

  function needLogin() {
    $("login").hidden = false;
    setConn(false, "needs a token");
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("ta-token", $("token").value);
    $("login").hidden = true;
    restartStream();
  });

  async function api(path) {
    const r = await fetch(path, { headers: headers(), cache: "no-store" });
    if (r.status === 401) { needLogin(); throw new Error("unauthorized"); }
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  function text(tag, value, cls) {
    const e = document.createElement(tag);
    e.textContent = value === undefined || value === null ? "" : String(value);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.append(c instanceof Node ? c : text("td", c));
    return tr;
  }

  function num(v) { return text("td", v, "num"); }

  function tags(list) {
    const td = document.createElement("td");
    for (const a of list) td.append(text("span", a.replace("_", " "), "tag"));
    return td;
  }

  function empty(tbody, cols, what) {
    const td = text("td", what, "empty");
    td.colSpan = cols;
    tbody.replaceChildren(row([td]));
  }

  function fmtRate(b) { return fmtBytes(b) + "/s"; }
  function fmtCount(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " G";
    if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + " k";
    return String(Math.round(n));
  }
  function fmtValue(v, unit) { return unit === "bytes" ? fmtBytes(v) : fmtCount(v) + " " + unit; }
  function fmtTime(ms) { return ms ? new Date(ms).toLocaleString() : ""; }
  function fmtDuration(s) {
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m";
  }

  // --- the stream ---------------------------------------------------------

  let streamAbort = null;
  let retryTimer = null;

  function setConn(on, why) {
    const c = $("conn");
    c.textContent = on ? "live" : why || "disconnected";
    c.className = "pill " + (on ? "on" : "off");
  }

  function restartStream() {
    if (streamAbort) streamAbort.abort();
    clearTimeout(retryTimer);
    openStream();
  }

  // fetch() rather than EventSource, so the token goes in a header.
  async function openStream() {
    const ctl = new AbortController();
    streamAbort = ctl;
    try {
      const r = await fetch("/api/v1/stream", { headers: headers(), signal: ctl.signal, cache: "no-store" });
      if (r.status === 401) { needLogin(); return; }
      if (!r.ok || !r.body) throw new Error("stream: " + r.status);
      setConn(true);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const msg = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = "message", data = "";
          for (const line of msg.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (event === "tick" && data) {
            try { onTick(JSON.parse(data)); } catch (e) { console.error(e); }
          }
        }
      }
      throw new Error("stream ended");
    } catch (e) {
      if (ctl.signal.aborted) return;
      setConn(false);
      retryTimer = setTimeout(openStream, 2000);
    }
  }

  // --- per tick -----------------------------------------------------------

  const series = new Map(); // interface -> [[unix_ms, bytes/s]]
  let last = null;
  let ticksSinceFlows = 1e9;
  let historyKey = "";

  function onTick(s) {
    last = s;
    $("meta").textContent = `v${s.version} · up ${fmtDuration(s.uptime_secs)} · tick ${s.tick} · ` +
      `${fmtCount(s.hosts_listed + s.hosts_unlisted)} hosts · ${s.alerts_open} open alert(s)`;
    $("window").textContent = `(sent over the last ${fmtDuration(s.window_secs)})`;
    for (const i of s.interfaces) {
      if (!series.has(i.name)) series.set(i.name, []);
      series.get(i.name).push([s.unix_ms, i.bytes_per_sec]);
    }
    for (const [, pts] of series) {
      while (pts.length && pts[0][0] < s.unix_ms - HISTORY_SECS * 1000) pts.shift();
    }
    drawThroughput(s.unix_ms);
    renderIfaces(s);
    renderHealth(s);
    renderTalkers(s);
    renderAlerts(s.alerts);
    $("alert-count").textContent = `(${s.alerts_open})`;
    if (++ticksSinceFlows >= Math.max(1, Math.round(5000 / Math.max(1, s.tick_ms)))) {
      ticksSinceFlows = 0;
      refreshFlows();
      refreshExporters();
    }
    const key = JSON.stringify(s.alert_counts.opened_total) + JSON.stringify(s.alert_counts.closed_total);
    if (key !== historyKey) { historyKey = key; refreshHistory(); }
  }

  function drawThroughput(now) {
    const cv = $("throughput");
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth || 800, h = cv.clientHeight || 220;
    if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
    const g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 70, bottom = 20, top = 8;
    let max = 1;
    for (const pts of series.values()) for (const p of pts) max = Math.max(max, p[1]);
    const x = (t) => left + (w - left - 8) * (1 - (now - t) / (HISTORY_SECS * 1000));
    const y = (v) => top + (h - top - bottom) * (1 - v / max);
    g.strokeStyle = "#dde1e8"; g.fillStyle = "#677086"; g.font = "11px system-ui"; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = max * i / 4, yy = y(v);
      g.beginPath(); g.moveTo(left, yy); g.lineTo(w - 8, yy); g.stroke();
      g.fillText(fmtRate(v), 4, yy + 4);
    }
    for (let m = 0; m <= HISTORY_SECS / 60; m++) {
      g.fillText(m === 0 ? "now" : `-${m}m`, x(now - m * 60000) - 10, h - 4);
    }
    const legend = $("legend");
    legend.replaceChildren();
    let c = 0;
    for (const [name, pts] of series) {
      const color = COLORS[c++ % COLORS.length];
      g.strokeStyle = color; g.lineWidth = 1.6; g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(x(p[0]), y(p[1])) : g.moveTo(x(p[0]), y(p[1]))));
      g.stroke();
      const item = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = color;
      const cur = pts.length ? pts[pts.length - 1][1] : 0;
      item.append(sw, document.createTextNode(`${name} ${fmtRate(cur)}`));
      legend.append(item);
    }
  }

  function renderIfaces(s) {
    const tb = $("ifaces").tBodies[0];
    if (!s.interfaces.length) return empty(tb, 6, "no interfaces watched");
    tb.replaceChildren(...s.interfaces.map((i) => row([
      i.name,
      text("td", i.present ? "up" : "gone", i.present ? "" : "bad"),
      num(fmtRate(i.bytes_per_sec)),
      num(fmtCount(i.packets_per_sec)),
      text("td", fmtCount(i.ring_drops_total), "num" + (i.drops_per_sec > 0 ? " bad" : "")),
      num(fmtCount(i.parser_problems_total)),
    ])));
  }

  function renderHealth(s) {
    const t = s.tables;
    const facts = [
      ["Window drops", (s.drop_ratio * 100).toFixed(3) + " %", s.drop_ratio > 0],
      ["Hosts table", `${fmtCount(t.hosts)} / ${fmtCount(t.max_hosts)}`, t.hosts >= t.max_hosts],
      ["Pairs table", `${fmtCount(t.pairs)} / ${fmtCount(t.max_pairs)}`, t.pairs >= t.max_pairs],
      ["Table memory", fmtBytes(t.bytes), false],
      ["Tick work", (s.health.merge_micros / 1000).toFixed(1) + " ms", s.health.merge_micros > s.tick_ms * 500],
      ["Late shards", String(s.late_shards_total), s.health.late_workers > 0],
      ["Counted", `${fmtCount(s.lifetime.packets)} packets, ${fmtBytes(s.lifetime.bytes)}`, false],
    ];
    for (const k of s.sinks) {
      facts.push([`Sink ${k.name}`, `${k.delivered} sent, ${k.failed} failed, ${k.dropped} dropped`, k.dropped + k.failed > 0]);
    }
    const dl = $("health");
    dl.replaceChildren();
    for (const [k, v, bad] of facts) dl.append(text("dt", k), text("dd", v, bad ? "bad" : ""));
  }

  function renderTalkers(s) {
    const tb = $("talkers").tBodies[0];
    if (!s.top_hosts.length) return empty(tb, 5, "no traffic in the window yet");
    tb.replaceChildren(...s.top_hosts.map((h) => row([
      h.addr, num(fmtBytes(h.sent_bytes)), num(fmtCount(h.sent_packets)), num(fmtBytes(h.recv_bytes)), tags(h.alerts),
    ])));
  }

  // --- alerts -------------------------------------------------------------

  let alertSort = { key: "id", dir: -1 };
  let selectedAlert = null;

  for (const th of $("alerts").tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      alertSort = { key, dir: alertSort.key === key ? -alertSort.dir : (key === "subject" || key === "kind" || key === "rule" ? 1 : -1) };
      if (last) renderAlerts(last.alerts);
    });
  }

  function renderAlerts(list) {
    for (const th of $("alerts").tHead.rows[0].cells) {
      th.className = (th.className.includes("num") ? "num " : "") + (th.dataset.key === alertSort.key ? (alertSort.dir > 0 ? "asc" : "desc") : "");
    }
    const tb = $("alerts").tBodies[0];
    if (!list.length) return empty(tb, 8, "no open alerts");
    const k = alertSort.key, d = alertSort.dir;
    const sorted = [...list].sort((a, b) => (a[k] < b[k] ? -d : a[k] > b[k] ? d : b.id - a.id));
    tb.replaceChildren(...sorted.map((a) => {
      const kind = tags([a.kind]);
      if (a.degraded) kind.append(text("span", "degraded", "tag degraded"));
      const tr = row([num(a.id), kind, a.subject, num(fmtValue(a.value, a.unit)), num(fmtValue(a.threshold, a.unit)),
        num(fmtValue(a.peak, a.unit)), fmtTime(a.start_ms), a.rule]);
      tr.dataset.id = a.id;
      if (a.id === selectedAlert) tr.className = "selected";
      tr.addEventListener("click", () => showEvidence(a.id));
      return tr;
    }));
  }

  async function showEvidence(id) {
    selectedAlert = id;
    if (last) renderAlerts(last.alerts);
    const box = $("evidence");
    box.hidden = false;
    let a;
    try {
      const all = await api("/api/v1/alerts");
      a = all.open.concat(all.recently_closed).find((x) => x.id === id);
    } catch (e) { box.replaceChildren(text("p", "cannot load the alert: " + e.message, "bad")); return; }
    if (!a) { box.replaceChildren(text("p", `alert ${id} is no longer open`, "empty")); return; }
    const parts = [text("h3", `Alert ${a.id}: ${a.kind.replace("_", " ")} — ${a.subject}`)];
    const facts = document.createElement("dl");
    facts.className = "facts";
    for (const [k, v] of [
      ["Value now / peak", `${fmtValue(a.value, a.unit)} / ${fmtValue(a.peak, a.unit)} in ${fmtDuration(a.window_secs)}`],
      ["Limit", `${fmtValue(a.threshold, a.unit)} (rule ${a.rule})`],
      ["Opened / updated", `${fmtTime(a.start_ms)} / ${fmtTime(a.last_update_ms)}`],
      ["Capture", a.degraded ? `was dropping packets (${(a.drop_ratio * 100).toFixed(2)} %): figures are a floor` : "complete"],
    ]) facts.append(text("dt", k), text("dd", v));
    const size = a.evidence && a.evidence.contacted;
    if (size != null) facts.append(text("dt", "Scan size"), text("dd", `about ${fmtCount(size)} distinct ${a.kind === "port_scan" ? "ports" : "addresses"} since it went past the limit`));
    parts.push(facts);
    const ev = a.evidence || {};
    const list = (title, items) => {
      if (!items || !items.length) return;
      parts.push(text("h3", title));
      const ul = document.createElement("ul");
      for (const it of items) ul.append(text("li", it));
      parts.push(ul);
    };
    list("Destinations", (ev.destinations || []).map((p) => `${p.ip} — ${fmtBytes(p.bytes)}, ${fmtCount(p.packets)} packets`));
    list("Sources", (ev.sources || []).map((p) => `${p.ip} — ${fmtBytes(p.bytes)}, ${fmtCount(p.packets)} packets`));
    list("Ports contacted (sample)", (ev.ports || []).map((p) => `${p.proto}/${p.port}`));
    const fp = ev.fingerprint;
    if (fp) {
      const pct = (x) => `${(x * 100).toFixed(1)} %`;
      parts.push(text("h3", "The flood"));
      const dl = document.createElement("dl");
      dl.className = "facts";
      for (const [k, v] of [
        ["Packets tallied", fmtCount(fp.packets)],
        ["Protocol", `${fp.protocol} (SYN ${pct(fp.syn_share)}, fragments ${pct(fp.fragment_share)})`],
        ["Top source prefixes", `${pct(fp.top_prefixes_share)} of packets from ${fp.source_prefixes.length} of ${fmtCount(fp.distinct_prefixes)} prefixes`],
      ]) dl.append(text("dt", k), text("dd", v));
      parts.push(dl);
      list("Ports its flows were opened to", (fp.ports || []).map((p) => `${p.proto}/${p.port} — ${fmtCount(p.packets)} packets`));
      list("Source prefixes", (fp.source_prefixes || []).map((p) => `${p.prefix} — ${fmtCount(p.packets)} packets`));
    }
    const cap = ev.capture;
    if (cap) {
      parts.push(text("h3", `The captured packets (${fmtCount(cap.packets)})`));
      const dl = document.createElement("dl");
      dl.className = "facts";
      const pairs = (l, f) => l.map((c) => `${f ? f(c.value) : c.value} ×${fmtCount(c.packets)}`).join(", ");
      for (const [k, v] of [
        ["Sizes", cap.sizes.filter((b) => b.packets).map((b) => `${b.up_to ? "≤" + b.up_to : "larger"} B ×${fmtCount(b.packets)}`).join(", ")],
        ["TTLs", `${pairs(cap.ttls)} (${fmtCount(cap.distinct_ttls)} distinct)`],
        ["Sources", `${pairs(cap.sources)} (${fmtCount(cap.distinct_sources)} distinct)`],
        ["Source ports", pairs(cap.source_ports)],
        ["Destination ports", pairs(cap.destination_ports)],
      ]) dl.append(text("dt", k), text("dd", v));
      parts.push(dl);
    }
    try {
      // What was announced, withdrawn or refused for it, from the history.
      const page = await api(`/api/v1/alerts/history?since=${a.start_ms}&limit=1000`);
      const acts = page.events.filter((e) => e.event === "mitigation" && e.alert.id === a.id);
      list("Mitigation", acts.map((e) => {
        const m = e.mitigation;
        const what = [m.prefix, m.flowspec].filter((x) => x).join(" and FlowSpec ");
        return `${fmtTime(m.at_ms)}: ${m.what.replace("_", " ")}${what ? " " + what : ""}${m.reason ? " — " + m.reason : ""}`;
      }));
    } catch (e) { /* the history is optional */ }
    if (a.kind !== "address_scan" && a.kind !== "port_scan") {
      // The flood's first packets, as the workers copied them.
      const link = text("a", "Download the attack capture (pcap)");
      link.href = `/api/v1/alerts/${a.id}/pcap`;
      link.className = "pcap";
      link.addEventListener("click", async (ev) => {
        ev.preventDefault();
        try {
          const r = await fetch(link.href, { headers: headers(), cache: "no-store" });
          if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.status);
          const url = URL.createObjectURL(await r.blob());
          const dl = document.createElement("a");
          dl.href = url;
          dl.download = `alert-${a.id}.pcap`;
          dl.click();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        } catch (e) { link.textContent = "no capture: " + e.message; }
      });
      parts.push(text("h3", "Attack capture"), link);
    }
    box.replaceChildren(...parts);
  }

  async function refreshHistory() {
    const tb = $("history").tBodies[0];
    try {
      const since = Date.now() - 86400000;
      const page = await api(`/api/v1/alerts/history?since=${since}&limit=1000`);
      const evs = page.events.slice(-100).reverse();
      if (!evs.length) return empty(tb, 7, "no alerts in the last 24 hours");
      tb.replaceChildren(...evs.map((e) => row([
        fmtTime(e.time_ms), e.event === "open" ? "opened" : e.event === "close" ? "closed" : (e.mitigation ? e.mitigation.what.replace("_", " ") : e.event), tags([e.alert.kind]), e.alert.subject,
        num(fmtValue(e.alert.peak, e.alert.unit)), num(fmtValue(e.alert.threshold, e.alert.unit)), e.alert.rule,
      ])));
    } catch (e) {
      if (e.message !== "unauthorized") empty(tb, 7, "history unavailable: " + e.message);
    }
  }

  async function refreshExporters() {
    try {
      const f = await api("/api/v1/flow-input");
      $("exporters-card").hidden = f.enabled === false;
      if (f.enabled === false) return;
      const tb = $("exporters").tBodies[0];
      if (!f.exporters.length) return empty(tb, 7, "no datagram yet on " + f.listen.join(", "));
      tb.replaceChildren(...f.exporters.map((e) => {
        const busiest = [...e.interfaces].sort((a, b) => (b.in_bytes + b.out_bytes) - (a.in_bytes + a.out_bytes)).slice(0, 3);
        const dropped = e.dropped.reduce((n, [, c]) => n + c, 0);
        return row([
          e.name ? `${e.name} (${e.address})` : e.address,
          e.protocol || "?",
          num(`1:${e.sampling} ${e.sampling_source}`),
          num(fmtCount(e.records)),
          num(fmtBytes(e.bytes) + " / " + fmtCount(e.packets) + " pkts"),
          num(dropped ? e.dropped.map(([r, c]) => `${r} ${c}`).join(", ") : "0"),
          busiest.map((i) => `#${i.if_index} ${fmtBytes(i.in_bytes)} / ${fmtBytes(i.out_bytes)}`).join(" · "),
        ]);
      }));
    } catch (e) {
      if (e.message !== "unauthorized") $("exporters-card").hidden = true;
    }
  }

  // --- flow chart ---------------------------------------------------------

  const graph = new FlowGraph($("flows"), showHost);
  $("flow-labels").addEventListener("change", (ev) => graph.setLabels(ev.target.checked));
  $("flow-reset").addEventListener("click", () => graph.fit(true));
  $("flow-limit").addEventListener("change", refreshFlows);

  async function refreshFlows() {
    try {
      const limit = $("flow-limit").value;
      let f = await api(`/api/v1/flows?limit=${limit}`);
      let note = "";
      if (f.edges_total === 0) {
        // Nothing reaches traffic.chart_min_bytes: chart the largest pairs.
        const min = f.min_bytes;
        f = await api(`/api/v1/flows?limit=${limit}&min_bytes=1`);
        note = ` — none reach chart_min_bytes (${fmtBytes(min)}): the largest senders' pairs`;
      }
      $("flow-info").textContent = `(${f.nodes.length} hosts, ${f.edges.length} of ${f.edges_total} pairs ≥ ${fmtBytes(f.min_bytes)} over ${fmtDuration(f.window_secs)}${note})`;
      graph.update(f);
    } catch (e) { /* the next tick tries again */ }
  }

  async function showHost(ip) {
    const box = $("host-detail");
    box.hidden = false;
    try {
      const h = (await api("/api/v1/hosts/" + encodeURIComponent(ip))).host;
      const parts = [text("h3", `${h.addr}: sent ${fmtBytes(h.sent_bytes)} (${fmtCount(h.sent_packets)} packets), received ${fmtBytes(h.recv_bytes)}; ` +
        `contacted ${h.contacted_addresses} addresses, ${h.contacted_ports} ports`)];
      const ul = document.createElement("ul");
      for (const d of h.destinations) ul.append(text("li", `${d.addr} — ${fmtBytes(d.bytes)}, ${fmtCount(d.packets)} packets`));
      parts.push(h.destinations.length ? ul : text("p", "no destinations kept for this host", "empty"));
      box.replaceChildren(...parts);
    } catch (e) {
      box.replaceChildren(text("p", `${ip}: not among the listed hosts now`, "empty"));
    }
  }

  $("footer").textContent = "Data from this box's API: /api/v1/… and /metrics. Updates every tick.";
  openStream();
})();
