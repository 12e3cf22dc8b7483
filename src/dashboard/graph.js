"use strict";
// The flow chart: hosts as nodes, pairs as edges weighted by bytes, drawn
// in plain SVG with a small force layout. Positions survive updates, so the
// picture moves only where the traffic changed. Labels are kept for the
// largest and the alerting hosts, so hundreds of nodes stay readable.

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const LABELS = 40;

  function el(name, attrs) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  class FlowGraph {
    constructor(container, onPick) {
      this.onPick = onPick;
      this.nodes = new Map(); // id -> {id, x, y, vx, vy, data, circle, label}
      this.edges = [];
      this.k = 1; this.tx = 0; this.ty = 0;
      this.alpha = 0;
      this.showLabels = true;
      this.picked = null;
      // Until the operator zooms or pans, the view follows the graph.
      this.userMoved = false;
      this.svg = el("svg", { role: "img", "aria-label": "flow chart" });
      this.root = el("g", {});
      this.edgeLayer = el("g", { class: "edges" });
      this.nodeLayer = el("g", { class: "nodes" });
      this.labelLayer = el("g", { class: "labels" });
      this.root.append(this.edgeLayer, this.nodeLayer, this.labelLayer);
      this.svg.append(this.root);
      container.append(this.svg);
      this.bindView();
    }

    size() {
      const r = this.svg.getBoundingClientRect();
      return { w: r.width || 800, h: r.height || 500 };
    }

    bindView() {
      let drag = null;
      this.svg.addEventListener("wheel", (ev) => {
        ev.preventDefault();
        const r = this.svg.getBoundingClientRect();
        const mx = ev.clientX - r.left, my = ev.clientY - r.top;
        const f = Math.exp(-ev.deltaY * 0.0015);
        const k = Math.min(8, Math.max(0.1, this.k * f));
        this.tx = mx - (mx - this.tx) * (k / this.k);
        this.ty = my - (my - this.ty) * (k / this.k);
        this.k = k;
        this.userMoved = true;
        this.applyView();
      }, { passive: false });
      this.svg.addEventListener("mousedown", (ev) => {
        if (ev.target.tagName === "circle") return;
        drag = { x: ev.clientX, y: ev.clientY, tx: this.tx, ty: this.ty };
      });
      window.addEventListener("mousemove", (ev) => {
        if (!drag) return;
        this.tx = drag.tx + ev.clientX - drag.x;
        this.ty = drag.ty + ev.clientY - drag.y;
        this.userMoved = true;
        this.applyView();
      });
      window.addEventListener("mouseup", () => { drag = null; });
    }

    applyView() {
      this.root.setAttribute("transform", `translate(${this.tx},${this.ty}) scale(${this.k})`);
      // Labels keep their size on screen whatever the zoom.
      this.labelLayer.style.fontSize = `${(11 / this.k).toFixed(2)}px`;
      this.labelLayer.style.strokeWidth = `${(3 / this.k).toFixed(2)}px`;
    }

    fit(byUser) {
      if (byUser) this.userMoved = false;
      const { w, h } = this.size();
      if (this.nodes.size === 0) { this.k = 1; this.tx = w / 2; this.ty = h / 2; this.applyView(); return; }
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const n of this.nodes.values()) {
        x0 = Math.min(x0, n.x); y0 = Math.min(y0, n.y); x1 = Math.max(x1, n.x); y1 = Math.max(y1, n.y);
      }
      const k = Math.min(2, 0.9 * Math.min(w / Math.max(1, x1 - x0 + 60), h / Math.max(1, y1 - y0 + 60)));
      this.k = k;
      this.tx = w / 2 - k * (x0 + x1) / 2;
      this.ty = h / 2 - k * (y0 + y1) / 2;
      this.applyView();
    }

    setLabels(on) { this.showLabels = on; this.draw(); }

    // data: {nodes:[{id, sent_bytes, recv_bytes, alerts}], edges:[{source, target, bytes}]}
    update(data) {
      const keep = new Set(data.nodes.map((n) => n.id));
      for (const [id, n] of this.nodes) {
        if (!keep.has(id)) { n.circle.remove(); n.label.remove(); this.nodes.delete(id); }
      }
      const neighbour = new Map();
      for (const e of data.edges) { neighbour.set(e.target, e.source); neighbour.set(e.source, e.target); }
      let fresh = 0;
      for (const d of data.nodes) {
        let n = this.nodes.get(d.id);
        if (!n) {
          const near = this.nodes.get(neighbour.get(d.id));
          const a = Math.random() * 2 * Math.PI, r = near ? 30 : 150 * Math.sqrt(Math.random());
          n = { id: d.id, x: (near ? near.x : 0) + r * Math.cos(a), y: (near ? near.y : 0) + r * Math.sin(a), vx: 0, vy: 0 };
          n.circle = el("circle", { r: 4 });
          n.title = el("title", {});
          n.circle.append(n.title);
          n.circle.addEventListener("click", () => this.pick(n.id));
          n.label = el("text", { dx: 7, dy: 3 });
          this.nodeLayer.append(n.circle);
          this.labelLayer.append(n.label);
          this.nodes.set(d.id, n);
          fresh++;
        }
        n.data = d;
      }
      this.edges = data.edges.filter((e) => this.nodes.has(e.source) && this.nodes.has(e.target));
      const maxB = Math.max(1, ...this.edges.map((e) => e.bytes));
      const maxN = Math.max(1, ...data.nodes.map((n) => n.sent_bytes + n.recv_bytes));
      this.edgeLayer.replaceChildren();
      for (const e of this.edges) {
        e.line = el("line", { "stroke-width": (0.6 + 5 * Math.sqrt(e.bytes / maxB)).toFixed(2) });
        const t = el("title", {});
        t.textContent = `${e.source} → ${e.target}: ${fmtBytes(e.bytes)}`;
        e.line.append(t);
        this.edgeLayer.append(e.line);
      }
      const ranked = [...this.nodes.values()].sort((a, b) =>
        (b.data.sent_bytes + b.data.recv_bytes) - (a.data.sent_bytes + a.data.recv_bytes));
      ranked.forEach((n, i) => {
        const t = n.data.sent_bytes + n.data.recv_bytes;
        n.circle.setAttribute("r", (3 + 9 * Math.sqrt(t / maxN)).toFixed(1));
        const alerting = n.data.alerts.length > 0;
        n.circle.setAttribute("class", (alerting ? "alerting" : (t === 0 ? "outside" : "")) + (this.picked === n.id ? " picked" : ""));
        n.circle.dataset.id = n.id;
        n.title.textContent = `${n.id}\nsent ${fmtBytes(n.data.sent_bytes)}, received ${fmtBytes(n.data.recv_bytes)}` +
          (alerting ? `\nalerts: ${n.data.alerts.join(", ")}` : "");
        n.labelled = alerting || i < LABELS;
        n.label.textContent = n.id;
      });
      this.alpha = fresh > 0 ? 1 : Math.max(this.alpha, 0.3);
      if (!this.running) this.run(fresh === this.nodes.size);
      else if (!this.userMoved) this.fit();
    }

    pick(id) {
      this.picked = id;
      for (const n of this.nodes.values()) n.circle.classList.toggle("picked", n.id === id);
      if (this.onPick) this.onPick(id);
    }

    run(first) {
      this.running = true;
      const frame = () => {
        const steps = first ? 30 : 2;
        for (let i = 0; i < steps && this.alpha > 0.01; i++) this.step();
        this.draw();
        if (first || !this.userMoved) { this.fit(); first = false; }
        if (this.alpha > 0.01) requestAnimationFrame(frame); else this.running = false;
      };
      requestAnimationFrame(frame);
    }

    // One step: nodes repel (within a cut-off), edges pull, gravity holds
    // the graph together; alpha cools so it comes to rest.
    step() {
      const ns = [...this.nodes.values()];
      const cut2 = 250 * 250;
      for (let i = 0; i < ns.length; i++) {
        const a = ns[i];
        for (let j = i + 1; j < ns.length; j++) {
          const b = ns[j];
          let dx = a.x - b.x, dy = a.y - b.y, d2 = dx * dx + dy * dy;
          if (d2 > cut2) continue;
          if (d2 < 0.01) { dx = Math.random() - 0.5; dy = Math.random() - 0.5; d2 = 0.5; }
          const f = 900 / d2;
          a.vx += dx * f; a.vy += dy * f; b.vx -= dx * f; b.vy -= dy * f;
        }
      }
      for (const e of this.edges) {
        const a = this.nodes.get(e.source), b = this.nodes.get(e.target);
        const dx = b.x - a.x, dy = b.y - a.y, d = Math.sqrt(dx * dx + dy * dy) || 1;
        const f = (d - 60) * 0.02;
        a.vx += dx / d * f; a.vy += dy / d * f; b.vx -= dx / d * f; b.vy -= dy / d * f;
      }
      for (const n of ns) {
        n.vx -= n.x * 0.004; n.vy -= n.y * 0.004;
        const v = Math.sqrt(n.vx * n.vx + n.vy * n.vy), max = 20 * this.alpha + 0.5;
        if (v > max) { n.vx *= max / v; n.vy *= max / v; }
        n.x += n.vx; n.y += n.vy; n.vx *= 0.6; n.vy *= 0.6;
      }
      this.alpha *= 0.985;
    }

    draw() {
      for (const e of this.edges) {
        const a = this.nodes.get(e.source), b = this.nodes.get(e.target);
        e.line.setAttribute("x1", a.x.toFixed(1)); e.line.setAttribute("y1", a.y.toFixed(1));
        e.line.setAttribute("x2", b.x.toFixed(1)); e.line.setAttribute("y2", b.y.toFixed(1));
      }
      for (const n of this.nodes.values()) {
        n.circle.setAttribute("cx", n.x.toFixed(1)); n.circle.setAttribute("cy", n.y.toFixed(1));
        n.label.setAttribute("x", n.x.toFixed(1)); n.label.setAttribute("y", n.y.toFixed(1));
        n.label.style.display = this.showLabels && n.labelled ? "" : "none";
      }
    }
  }

  function fmtBytes(b) {
    const u = ["B", "kB", "MB", "GB", "TB", "PB"];
    let i = 0;
    while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
    return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
  }

  window.FlowGraph = FlowGraph;
  window.fmtBytes = fmtBytes;
})();
