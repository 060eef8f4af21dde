/* paperscope topic map: every paper a point on a canvas, coloured by topic. Plain JS, no build step.
 *
 * Drawing: points are written straight into an ImageData buffer (a Uint32 per pixel), which costs a few
 * milliseconds for 100k points even without a GPU; labels, highlights, layers and the selection are
 * drawn over it with the 2-D API. A frame is drawn only when something changed (requestAnimationFrame).
 * Hover looks points up in a uniform grid over the map, so it costs the same for 700 or 100k papers.
 *
 * Data: GET /api/map (202 + progress while the map is computed; polled), /api/map/match for the
 * search highlight, POST /api/map/selection for the papers picked with the box or lasso.
 * Test hooks: window.paperMap (state, frame statistics, load(), panBy(), zoomAt(), pointAt()).
 */
(function () {
  "use strict";
  var page = document.getElementById("map-page");
  if (!page) return;
  var canvas = document.getElementById("map-canvas");
  var stage = document.getElementById("map-stage");
  var ctx = canvas.getContext("2d", { alpha: false });
  var tip = document.getElementById("map-tip");
  var statusEl = document.getElementById("map-status");
  var legend = document.getElementById("map-legend");
  var progressBox = document.getElementById("map-progress");
  var progressText = document.getElementById("map-progress-text");
  var progressBar = document.getElementById("map-progress-bar");

  // 26 distinguishable colours (broad topics); fine topics vary their lightness.
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5"];

  var S = {
    data: null, key: null, n: 0, xs: null, ys: null, topic: null, broadOfFine: null,
    fineColor: null, fineDim: null, fineCss: [], broadCss: [],
    view: { s: 1, tx: 0, ty: 0 }, width: 0, height: 0, dpr: 1,
    image: null, buf: null, bg: 0, bgCss: "#fff", textCss: "#111", haloCss: "#fff",
    highlight: null, highlightCount: 0, focus: null, selection: null, selectionSet: null,
    layers: { library: null, recommended: null }, showLayer: { library: true, recommended: true },
    mode: "pan", hover: -1, drag: null, path: null, dirty: true,
    grid: null, stats: { frames: 0, renderMs: [], lastRenderMs: 0 }, q: page.dataset.q || "",
    labelBoxes: []
  };

  // ---------------------------------------------------------------------------- colours
  function hexToRgb(hex) {
    hex = (hex || "").trim();
    var m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) {
      var r = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(hex);
      return r ? [+r[1], +r[2], +r[3]] : [255, 255, 255];
    }
    return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
  }
  function mix(a, b, t) { return [0, 1, 2].map(function (i) { return Math.round(a[i] * (1 - t) + b[i] * t); }); }
  function pack(rgb) { return ((255 << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0; } // little-endian RGBA
  function css(rgb) { return "rgb(" + rgb[0] + "," + rgb[1] + "," + rgb[2] + ")"; }

  function readTheme() {
    var style = getComputedStyle(document.body);
    var bg = hexToRgb(style.getPropertyValue("--panel") || "#ffffff");
    var text = hexToRgb(style.getPropertyValue("--text") || "#111111");
    S.bgRgb = bg; S.bg = pack(bg); S.bgCss = css(bg); S.textCss = css(text); S.haloCss = css(bg);
  }

  function buildColours() {
    var d = S.data, fine = d.fine, nb = d.broad.length;
    S.broadCss = [];
    for (var b = 0; b < nb; b++) S.broadCss.push(PALETTE[b % PALETTE.length]);
    S.fineColor = new Uint32Array(fine.length);
    S.fineDim = new Uint32Array(fine.length);
    S.fineCss = [];
    var rank = {};
    for (var f = 0; f < fine.length; f++) {
      var br = fine[f].broad, k = rank[br] = (rank[br] || 0) + 1;
      var base = hexToRgb(S.broadCss[br]);
      var shade = ((k - 1) % 3) * 0.14;     // siblings differ a little in lightness
      var rgb = mix(base, (k % 2) ? [255, 255, 255] : [0, 0, 0], shade);
      S.fineColor[f] = pack(rgb);
      S.fineDim[f] = pack(mix(rgb, S.bgRgb, 0.82));
      S.fineCss.push(css(rgb));
    }
  }

  // ---------------------------------------------------------------------------- data
  function load(d) {
    S.data = d; S.key = d.map.key;
    var p = d.points, n = p.ids.length;
    S.n = n;
    S.xs = Float32Array.from(p.x); S.ys = Float32Array.from(p.y);
    S.topic = Int32Array.from(p.topic);
    S.broadOfFine = Int32Array.from(d.fine.map(function (f) { return f.broad; }));
    S.position = null;
    S.highlight = null; S.highlightCount = 0; S.selection = null; S.selectionSet = null; S.focus = null;
    readTheme(); buildColours(); buildGrid(); buildLegend(); setLayers(d.layers || {});
    resize(); fit();
    if (d.highlight) setHighlight(d.highlight);
    var topicId = page.dataset.topic;
    if (topicId) focusTopic(topicId, true);
    statusLine();
    requestDraw();
  }

  function buildGrid() {
    var n = S.n, xs = S.xs, ys = S.ys;
    var minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
    for (var i = 0; i < n; i++) {
      if (xs[i] < minx) minx = xs[i]; if (xs[i] > maxx) maxx = xs[i];
      if (ys[i] < miny) miny = ys[i]; if (ys[i] > maxy) maxy = ys[i];
    }
    if (!n) { minx = miny = 0; maxx = maxy = 1; }
    var w = Math.max(maxx - minx, 1e-6), h = Math.max(maxy - miny, 1e-6);
    var cells = Math.max(1, Math.min(512, Math.round(Math.sqrt(n / 4))));
    var cell = Math.max(w, h) / cells;
    var cols = Math.floor(w / cell) + 1, rows = Math.floor(h / cell) + 1;
    var count = new Int32Array(cols * rows + 1), idx = new Int32Array(n);
    for (i = 0; i < n; i++) {
      var c = Math.floor((xs[i] - minx) / cell) + Math.floor((ys[i] - miny) / cell) * cols;
      idx[i] = c; count[c + 1]++;
    }
    for (var c2 = 0; c2 < cols * rows; c2++) count[c2 + 1] += count[c2];
    var fill = count.slice(0, cols * rows), items = new Int32Array(n);
    for (i = 0; i < n; i++) items[fill[idx[i]]++] = i;
    S.grid = { minx: minx, miny: miny, maxx: maxx, maxy: maxy, cell: cell, cols: cols, rows: rows, start: count, items: items };
  }

  // nearest point to a screen position (CSS px) within radius px, or -1
  function pointAt(sx, sy, radius) {
    var g = S.grid; if (!g || !S.n) return -1;
    var v = S.view, x = (sx - v.tx) / v.s, y = (sy - v.ty) / v.s, r = (radius || 8) / v.s;
    var c0 = Math.max(0, Math.floor((x - r - g.minx) / g.cell)), c1 = Math.min(g.cols - 1, Math.floor((x + r - g.minx) / g.cell));
    var r0 = Math.max(0, Math.floor((y - r - g.miny) / g.cell)), r1 = Math.min(g.rows - 1, Math.floor((y + r - g.miny) / g.cell));
    var best = -1, bestD = r * r, dim = S.highlight || S.focusMask;
    for (var row = r0; row <= r1; row++) {
      for (var col = c0; col <= c1; col++) {
        var c = row * g.cols + col;
        for (var k = g.start[c], e = g.start[c + 1]; k < e; k++) {
          var i = g.items[k], dx = S.xs[i] - x, dy = S.ys[i] - y, d = dx * dx + dy * dy;
          if (dim && !dim[i]) d *= 4;          // prefer the highlighted points
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  // ---------------------------------------------------------------------------- view
  function resize() {
    var rect = stage.getBoundingClientRect();
    S.dpr = Math.min(window.devicePixelRatio || 1, 2);
    S.width = Math.max(200, Math.floor(rect.width)); S.height = Math.max(200, Math.floor(rect.height));
    canvas.width = Math.floor(S.width * S.dpr); canvas.height = Math.floor(S.height * S.dpr);
    canvas.style.width = S.width + "px"; canvas.style.height = S.height + "px";
    S.image = ctx.createImageData(canvas.width, canvas.height);
    S.buf = new Uint32Array(S.image.data.buffer);
    S.dirty = true;
  }

  function fitBox(minx, miny, maxx, maxy, pad) {
    pad = pad == null ? 24 : pad;
    var w = Math.max(maxx - minx, 1e-3), h = Math.max(maxy - miny, 1e-3);
    var s = Math.min((S.width - 2 * pad) / w, (S.height - 2 * pad) / h);
    S.view.s = s;
    S.view.tx = (S.width - w * s) / 2 - minx * s;
    S.view.ty = (S.height - h * s) / 2 - miny * s;
    S.minScale = S.minScale || s / 2;
    requestDraw();
  }
  function fit() { var g = S.grid; S.minScale = 0; fitBox(g.minx, g.miny, g.maxx, g.maxy); S.minScale = S.view.s / 2; }

  function zoomAt(sx, sy, factor) {
    var v = S.view, s = Math.max(S.minScale || 0, Math.min(v.s * factor, (S.minScale || v.s) * 400));
    factor = s / v.s;
    v.tx = sx - (sx - v.tx) * factor; v.ty = sy - (sy - v.ty) * factor; v.s = s;
    requestDraw();
  }
  function panBy(dx, dy) { S.view.tx += dx; S.view.ty += dy; requestDraw(); }

  // ---------------------------------------------------------------------------- drawing
  function requestDraw() {
    if (S.pending) return;
    S.pending = true;
    requestAnimationFrame(function () { S.pending = false; draw(); });
  }

  function draw() {
    if (!S.data) return;
    var t0 = performance.now();
    var W = canvas.width, H = canvas.height, buf = S.buf, dpr = S.dpr;
    buf.fill(S.bg);
    var v = S.view, sc = v.s * dpr, tx = v.tx * dpr, ty = v.ty * dpr;
    var n = S.n, xs = S.xs, ys = S.ys, topic = S.topic;
    var size = Math.max(2, Math.min(8, Math.round((n > 20000 ? 1.6 : n > 3000 ? 2.6 : 4.4) * dpr * Math.pow(v.s / (S.minScale * 2), 0.35))));
    var mask = S.highlight || S.focusMask || S.selectionSet;
    var colors = mask ? S.fineDim : S.fineColor;
    // all points (dimmed when something is highlighted), then the highlighted ones on top
    plot(0, n, null, colors, size);
    if (mask) plot(0, n, mask, S.fineColor, size + 1);
    ctx.putImageData(S.image, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawLayers();
    drawLabels();
    drawHover();
    drawPath();
    S.stats.frames++;
    S.stats.lastRenderMs = performance.now() - t0;
    if (S.stats.renderMs.length < 10000) S.stats.renderMs.push(S.stats.lastRenderMs);

    function plot(from, to, only, palette, sz) {
      var half = sz >> 1;
      for (var i = from; i < to; i++) {
        if (only && !only[i]) continue;
        var px = (xs[i] * sc + tx) | 0, py = (ys[i] * sc + ty) | 0;
        if (px < half || py < half || px >= W - sz || py >= H - sz) continue;
        var c = palette[topic[i]], o = (py - half) * W + (px - half);
        for (var r = 0; r < sz; r++, o += W) {
          for (var k = 0; k < sz; k++) buf[o + k] = c;
        }
      }
    }
  }

  function screen(i) { return [S.xs[i] * S.view.s + S.view.tx, S.ys[i] * S.view.s + S.view.ty]; }

  function drawLayers() {
    var styles = { library: "#111", recommended: "#b31b1b" };
    ["library", "recommended"].forEach(function (name) {
      var pts = S.layers[name];
      if (!pts || !S.showLayer[name]) return;
      ctx.lineWidth = 1.5; ctx.strokeStyle = styles[name];
      ctx.beginPath();
      for (var k = 0; k < pts.length; k++) {
        var p = screen(pts[k]);
        if (p[0] < -10 || p[1] < -10 || p[0] > S.width + 10 || p[1] > S.height + 10) continue;
        ctx.moveTo(p[0] + 5, p[1]); ctx.arc(p[0], p[1], 5, 0, 2 * Math.PI);
      }
      ctx.stroke();
    });
  }

  function drawLabels() {
    var d = S.data, v = S.view, boxes = [];
    var zoom = v.s / (S.minScale * 2);                  // 1 = the whole map fits
    var showFine = zoom > 1.8 || d.broad.length <= 1;
    ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.lineJoin = "round";
    var list = [];
    if (!showFine || d.broad.length > 1) d.broad.forEach(function (b) { list.push({ t: b, level: "broad" }); });
    if (showFine) d.fine.forEach(function (f) { list.push({ t: f, level: "fine" }); });
    if (showFine) list.sort(function (a, b) { return (a.level === b.level ? 0 : a.level === "fine" ? -1 : 1) || b.t.size - a.t.size; });
    else list.sort(function (a, b) { return b.t.size - a.t.size; });
    for (var k = 0; k < list.length; k++) {
      var item = list[k], t = item.t, broad = item.level === "broad";
      if (broad && showFine) continue;
      var x = t.x * v.s + v.tx, y = t.y * v.s + v.ty;
      if (x < 0 || y < 0 || x > S.width || y > S.height) continue;
      var text = t.terms.slice(0, broad ? 2 : 2).join(", ") || t.label;
      ctx.font = (broad ? "600 14px " : "12px ") + "system-ui, sans-serif";
      var w = ctx.measureText(text).width + 8, h = broad ? 18 : 15;
      var box = [x - w / 2, y - h / 2, x + w / 2, y + h / 2];
      if (collides(box, boxes)) continue;
      boxes.push(box);
      ctx.lineWidth = 3.5; ctx.strokeStyle = S.haloCss; ctx.strokeText(text, x, y);
      ctx.fillStyle = S.textCss; ctx.fillText(text, x, y);
    }
    S.labelBoxes = boxes;
  }
  function collides(b, boxes) {
    for (var i = 0; i < boxes.length; i++) {
      var o = boxes[i];
      if (b[0] < o[2] && b[2] > o[0] && b[1] < o[3] && b[3] > o[1]) return true;
    }
    return false;
  }

  function drawHover() {
    if (S.hover < 0) return;
    var p = screen(S.hover);
    ctx.lineWidth = 2; ctx.strokeStyle = S.textCss;
    ctx.beginPath(); ctx.arc(p[0], p[1], 6, 0, 2 * Math.PI); ctx.stroke();
  }

  function drawPath() {
    if (!S.path || S.path.length < 2) return;
    ctx.lineWidth = 1.5; ctx.strokeStyle = S.textCss; ctx.setLineDash([5, 4]);
    ctx.fillStyle = "rgba(120,120,120,0.12)";
    ctx.beginPath();
    if (S.path.box) {
      var a = S.path[0], b = S.path[S.path.length - 1];
      ctx.rect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]));
    } else {
      ctx.moveTo(S.path[0][0], S.path[0][1]);
      for (var i = 1; i < S.path.length; i++) ctx.lineTo(S.path[i][0], S.path[i][1]);
      ctx.closePath();
    }
    ctx.fill(); ctx.stroke(); ctx.setLineDash([]);
  }

  // ---------------------------------------------------------------------------- hover, click, drag
  function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

  function showTip(i, at) {
    if (i < 0) { tip.hidden = true; return; }
    var d = S.data, f = d.fine[S.topic[i]];
    tip.textContent = "";
    var title = document.createElement("strong"); title.textContent = d.points.titles[i] || d.points.ids[i];
    var topicLine = document.createElement("span"); topicLine.className = "map-tip-topic";
    topicLine.textContent = f ? f.label : "";
    tip.appendChild(title); tip.appendChild(topicLine);
    tip.hidden = false;
    var x = Math.min(at[0] + 14, S.width - tip.offsetWidth - 4), y = at[1] + 14;
    if (y + tip.offsetHeight > S.height) y = at[1] - tip.offsetHeight - 10;
    tip.style.left = Math.max(4, x) + "px"; tip.style.top = Math.max(4, y) + "px";
  }

  var moveQueued = null;
  canvas.addEventListener("pointermove", function (e) {
    var at = local(e);
    if (S.drag) {
      var dr = S.drag;
      if (dr.kind === "pan") { panBy(at[0] - dr.last[0], at[1] - dr.last[1]); }
      else if (dr.kind === "box") { S.path = [dr.start, at]; S.path.box = true; requestDraw(); }
      else { S.path.push(at); requestDraw(); }
      if (Math.abs(at[0] - dr.start[0]) + Math.abs(at[1] - dr.start[1]) > 4) dr.moved = true;
      dr.last = at;
      if (dr.moved && S.hover >= 0) { S.hover = -1; showTip(-1); }
      return;
    }
    if (moveQueued) { moveQueued = at; return; }
    moveQueued = at;
    requestAnimationFrame(function () {
      var pos = moveQueued; moveQueued = null;
      var i = pointAt(pos[0], pos[1], 8);
      canvas.style.cursor = i >= 0 ? "pointer" : (S.mode === "pan" ? "grab" : "crosshair");
      if (i !== S.hover) { S.hover = i; requestDraw(); }
      showTip(i, pos);
    });
  });
  canvas.addEventListener("pointerleave", function () { if (!S.drag) { S.hover = -1; showTip(-1); requestDraw(); } });

  canvas.addEventListener("pointerdown", function (e) {
    if (e.button !== 0 || !S.data) return;
    canvas.focus({ preventScroll: true });
    var at = local(e);
    var kind = e.shiftKey ? "box" : e.altKey ? "lasso" : S.mode;
    S.drag = { kind: kind, start: at, last: at, moved: false, button: e.button, meta: e.metaKey || e.ctrlKey };
    if (kind !== "pan") { S.path = [at]; S.path.box = kind === "box"; }
    canvas.setPointerCapture(e.pointerId);
    if (kind === "pan") canvas.style.cursor = "grabbing";
    e.preventDefault();
  });
  canvas.addEventListener("pointerup", function (e) {
    var dr = S.drag; if (!dr) return;
    S.drag = null;
    canvas.style.cursor = S.mode === "pan" ? "grab" : "crosshair";
    if (!dr.moved) {
      S.path = null;
      var i = pointAt(dr.start[0], dr.start[1], 8);
      if (i >= 0) openPaper(i, dr.meta);
      requestDraw();
      return;
    }
    if (dr.kind !== "pan") { select(S.path); }
  });

  function openPaper(i, newTab) {
    var url = "/paper/" + encodeURIComponent(S.data.points.ids[i]);
    if (newTab) window.open(url, "_blank", "noopener"); else window.location.assign(url);
  }

  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var at = local(e);
    zoomAt(at[0], at[1], Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)));
  }, { passive: false });
  canvas.addEventListener("dblclick", function (e) { var at = local(e); zoomAt(at[0], at[1], 2); });
  canvas.addEventListener("keydown", function (e) {
    var step = 60, done = true;
    if (e.key === "ArrowLeft") panBy(step, 0); else if (e.key === "ArrowRight") panBy(-step, 0);
    else if (e.key === "ArrowUp") panBy(0, step); else if (e.key === "ArrowDown") panBy(0, -step);
    else if (e.key === "+" || e.key === "=") zoomAt(S.width / 2, S.height / 2, 1.4);
    else if (e.key === "-") zoomAt(S.width / 2, S.height / 2, 1 / 1.4);
    else if (e.key === "Escape") clearSelection();
    else done = false;
    if (done) e.preventDefault();
  });

  // ---------------------------------------------------------------------------- selection
  function select(path) {
    if (!path || path.length < 2) { S.path = null; requestDraw(); return; }
    var box = path.box, xs = S.xs, ys = S.ys, v = S.view, out = [];
    var minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
    var poly = box ? null : path;
    var pts = box ? [path[0], path[path.length - 1]] : path;
    for (var k = 0; k < pts.length; k++) {
      minx = Math.min(minx, pts[k][0]); maxx = Math.max(maxx, pts[k][0]);
      miny = Math.min(miny, pts[k][1]); maxy = Math.max(maxy, pts[k][1]);
    }
    for (var i = 0; i < S.n; i++) {
      var x = xs[i] * v.s + v.tx, y = ys[i] * v.s + v.ty;
      if (x < minx || x > maxx || y < miny || y > maxy) continue;
      if (poly && !inside(x, y, poly)) continue;
      out.push(i);
    }
    S.path = null;
    setSelection(out);
  }
  function inside(x, y, poly) {       // ray casting
    var c = false;
    for (var i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      var xi = poly[i][0], yi = poly[i][1], xj = poly[j][0], yj = poly[j][1];
      if (((yi > y) !== (yj > y)) && (x < (xj - xi) * (y - yi) / (yj - yi) + xi)) c = !c;
    }
    return c;
  }

  var selBox = document.getElementById("map-selection");
  function setSelection(points) {
    S.selection = points;
    S.selectionSet = null;
    if (points && points.length) {
      S.selectionSet = new Uint8Array(S.n);
      points.forEach(function (i) { S.selectionSet[i] = 1; });
    }
    requestDraw();
    if (!points || !points.length) { selBox.hidden = true; return; }
    selBox.hidden = false;
    document.getElementById("sel-count").textContent = points.length + " paper" + (points.length === 1 ? "" : "s") + " selected";
    document.getElementById("sel-terms").textContent = "…";
    document.getElementById("sel-papers").textContent = "";
    document.getElementById("sel-topics").textContent = "";
    fetch("/api/map/selection", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: S.key, points: points })
    }).then(function (r) { return r.json(); }).then(function (res) {
      if (S.selection !== points) return;
      document.getElementById("sel-terms").textContent = res.terms && res.terms.length ? "Key phrases: " + res.terms.join(" · ") : "";
      var tl = document.getElementById("sel-topics");
      (res.topics || []).forEach(function (t) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = t.url; a.textContent = t.label; li.appendChild(a);
        li.appendChild(document.createTextNode(" " + t.count)); tl.appendChild(li);
      });
      var ol = document.getElementById("sel-papers");
      (res.papers || []).forEach(function (p) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = p.url; a.textContent = p.title; li.appendChild(a);
        if (p.venue) { var s = document.createElement("span"); s.className = "muted small"; s.textContent = " " + p.venue; li.appendChild(s); }
        ol.appendChild(li);
      });
      if (res.count > res.listed) {
        var more = document.createElement("li"); more.className = "muted";
        more.textContent = "and " + (res.count - res.listed) + " more"; ol.appendChild(more);
      }
    }).catch(function () { document.getElementById("sel-terms").textContent = "Could not list the selection."; });
  }
  function clearSelection() { setSelection(null); }
  document.getElementById("sel-clear").addEventListener("click", clearSelection);

  // ---------------------------------------------------------------------------- highlight, focus, legend, layers
  function setHighlight(points) {
    if (!points) { S.highlight = null; S.highlightCount = 0; requestDraw(); statusLine(); return; }
    S.highlight = new Uint8Array(S.n);
    points.forEach(function (i) { S.highlight[i] = 1; });
    S.highlightCount = points.length;
    statusLine(); requestDraw();
  }

  function highlightQuery(q) {
    S.q = q;
    if (!q.trim()) { setHighlight(null); return Promise.resolve(); }
    return fetch("/api/map/match?" + new URLSearchParams({ q: q, key: S.key })).then(function (r) { return r.json(); })
      .then(function (res) { if (S.q === q) setHighlight(res.matches || []); });
  }

  var form = document.getElementById("map-search");
  form.addEventListener("submit", function (e) {
    if (!S.data) return;
    e.preventDefault();
    var q = document.getElementById("map-q").value;
    var url = new URL(window.location.href);
    if (q.trim()) url.searchParams.set("q", q); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    highlightQuery(q);
  });

  function focusTopic(id, zoom) {
    var d = S.data, fine = -1, broad = -1;
    d.fine.forEach(function (f, i) { if (f.id === id) fine = i; });
    d.broad.forEach(function (b, i) { if (b.id === id) broad = i; });
    if (fine < 0 && broad < 0) { S.focusMask = null; S.focus = null; requestDraw(); return; }
    S.focus = id;
    var mask = new Uint8Array(S.n), minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
    for (var i = 0; i < S.n; i++) {
      var t = S.topic[i];
      if (t === fine || (broad >= 0 && S.broadOfFine[t] === broad)) {
        mask[i] = 1;
        minx = Math.min(minx, S.xs[i]); maxx = Math.max(maxx, S.xs[i]);
        miny = Math.min(miny, S.ys[i]); maxy = Math.max(maxy, S.ys[i]);
      }
    }
    S.focusMask = mask;
    if (zoom && minx < Infinity) fitBox(minx, miny, maxx, maxy, 60);
    legend.querySelectorAll("[data-topic]").forEach(function (el) {
      el.classList.toggle("on", el.dataset.topic === id);
    });
    requestDraw();
  }

  function buildLegend() {
    var d = S.data;
    legend.textContent = "";
    d.broad.forEach(function (b, bi) {
      var li = document.createElement("li");
      var sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = S.broadCss[bi];
      var btn = document.createElement("button"); btn.type = "button"; btn.className = "linkish"; btn.dataset.topic = b.id;
      btn.textContent = b.label; btn.title = b.terms.join(" · ");
      btn.addEventListener("click", function () {
        if (S.focus === b.id) { S.focus = null; S.focusMask = null; btn.classList.remove("on"); requestDraw(); }
        else focusTopic(b.id, true);
      });
      var count = document.createElement("span"); count.className = "count"; count.textContent = b.size;
      var link = document.createElement("a"); link.href = b.url; link.textContent = "papers"; link.className = "small";
      li.appendChild(sw); li.appendChild(btn); li.appendChild(count); li.appendChild(document.createTextNode(" "));
      li.appendChild(link);
      legend.appendChild(li);
    });
  }

  function setLayers(layers) {
    S.layers = { library: layers.library || null, recommended: layers.recommended || null };
    var any = false;
    ["library", "recommended"].forEach(function (name) {
      var label = document.getElementById("layer-" + name + "-label"), box = document.getElementById("layer-" + name);
      var has = !!(S.layers[name] && S.layers[name].length);
      label.hidden = !has; any = any || has;
      box.onchange = function () { S.showLayer[name] = box.checked; requestDraw(); };
    });
    document.getElementById("map-layers").hidden = !any;
  }

  function statusLine() {
    var d = S.data; if (!d) return;
    var m = d.map, parts = [m.papers + " papers, " + m.broad_topics + " topics (" + m.fine_topics + " finer)"];
    if (S.highlight) parts.push(S.highlightCount + " match “" + S.q + "”");
    if (m.missing) parts.push(m.missing + " without vectors not shown");
    if (d.status === "stale") parts.push("updating…");
    statusEl.textContent = parts.join(" · ");
    if (m.note) statusEl.title = m.note;
  }

  // ---------------------------------------------------------------------------- toolbar
  document.querySelectorAll(".map-tools [data-mode]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      S.mode = btn.dataset.mode;
      document.querySelectorAll(".map-tools [data-mode]").forEach(function (b) {
        b.classList.toggle("on", b === btn); b.setAttribute("aria-pressed", b === btn ? "true" : "false");
      });
      canvas.style.cursor = S.mode === "pan" ? "grab" : "crosshair";
    });
  });
  document.getElementById("map-zoom-in").addEventListener("click", function () { zoomAt(S.width / 2, S.height / 2, 1.5); });
  document.getElementById("map-zoom-out").addEventListener("click", function () { zoomAt(S.width / 2, S.height / 2, 1 / 1.5); });
  document.getElementById("map-reset").addEventListener("click", function () { if (S.data) fit(); });
  window.addEventListener("resize", function () {
    if (!S.data) return;
    var cx = (S.width / 2 - S.view.tx) / S.view.s, cy = (S.height / 2 - S.view.ty) / S.view.s;
    resize();
    S.view.tx = S.width / 2 - cx * S.view.s; S.view.ty = S.height / 2 - cy * S.view.s;
    requestDraw();
  });

  // ---------------------------------------------------------------------------- loading, with progress
  var pollDelay = 800;
  function fetchMap() {
    return fetch(page.dataset.api, { headers: { accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) { return { code: r.status, body: body }; });
    }).then(function (res) {
      var b = res.body;
      if (b.status === "computing") {
        progressBox.hidden = false;
        var p = b.progress || { fraction: 0, stage: "starting" };
        progressBar.value = p.fraction || 0;
        progressText.textContent = (b.message || "Computing the topic map…") + " " + Math.round((p.fraction || 0) * 100) + "% (" + p.stage + ")";
        setTimeout(fetchMap, pollDelay); pollDelay = Math.min(3000, pollDelay * 1.3);
        return;
      }
      if (b.status === "failed") {
        progressBox.hidden = false; progressBar.hidden = true;
        progressText.textContent = b.message || "The map could not be computed.";
        return;
      }
      progressBox.hidden = true;
      var same = S.data && S.key === b.map.key;
      if (!same) load(b); else { S.data.status = b.status; statusLine(); }
      if (S.q && !same) highlightQuery(S.q);
      if (!same) fetch("/api/map/layers?" + new URLSearchParams({ key: b.map.key })).then(function (r) { return r.json(); })
        .then(function (res) { if (res.layers && S.key === res.key) { setLayers(res.layers); requestDraw(); } }).catch(function () {});
      if (b.status === "stale") setTimeout(fetchMap, 3000);
    }).catch(function () {
      progressBox.hidden = false; progressText.textContent = "The map could not be loaded; retrying…";
      setTimeout(fetchMap, 3000);
    });
  }

  window.paperMap = {
    state: S, stats: S.stats, load: load, panBy: panBy, zoomAt: zoomAt, pointAt: pointAt, fit: fit,
    screen: screen, select: setSelection, highlight: highlightQuery, draw: draw
  };
  resize();
  fetchMap();
})();
