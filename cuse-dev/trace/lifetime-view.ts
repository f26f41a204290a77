// The browser side of `report --html` (html.ts embeds it whole): draws the userptr lifetime picture on a canvas —
// time (the trace's seq) across, address down (each client and file its own band; within a band every distinct BO
// boundary is one step, so sparse address spaces stay readable), one bar per BO from create to deletion, narrowing
// at each split — with the marks, a hover tooltip, a click panel with the ioctl and the memory event that caused a
// change, and a list with one entry per BO. Plain ES2017 with no backquote and no dollar-brace (it lives in a TS
// string); trace text only ever reaches the page through textContent.

export const VIEWER_CSS = `
body { margin: 0; font: 12px system-ui, sans-serif; color: #222; display: flex; flex-direction: column; height: 100vh; }
header { padding: 6px 10px; border-bottom: 1px solid #ccc; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
header h1 { font-size: 14px; margin: 0; }
.legend span { display: inline-flex; align-items: center; gap: 4px; margin-right: 10px; }
.legend i { display: inline-block; width: 10px; height: 10px; }
main { flex: 1; display: flex; min-height: 0; }
#wrap { flex: 1; position: relative; min-width: 0; }
#view { position: absolute; inset: 0; width: 100%; height: 100%; cursor: crosshair; }
#tip { position: absolute; pointer-events: none; background: #fffbe6; border: 1px solid #bba; padding: 4px 6px; white-space: pre; display: none; max-width: 60ch; overflow: hidden; }
aside { width: 420px; border-left: 1px solid #ccc; overflow: auto; padding: 6px 8px; }
aside pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: 4px; margin: 4px 0; }
aside a { color: #0645ad; cursor: pointer; text-decoration: underline; }
#bo-list li { cursor: pointer; }
#bo-list li.sel { background: #ffe8a0; }
`;

export const VIEWER_JS = String.raw`
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('trace-data').textContent);
  // The records a tooltip or the panel shows: parsed at the first hover or click, not before the first paint.
  var recs = null;
  function rec(seq) { if (!recs) recs = JSON.parse(document.getElementById('trace-records').textContent); return recs[seq]; }
  var KIND_COLOR = { split: '#e67e00', evict: '#d0021b', dedup: '#1f6fd1', notify: '#888', update: '#9a6', delete: '#000' };
  var cv = document.getElementById('view'), g = cv.getContext('2d');
  var tip = document.getElementById('tip'), detail = document.getElementById('detail');
  var BAND_GAP = 22, GUTTER = 118, AXIS = 18;
  var hex = function (a) { return '0x' + a.toString(16); };

  // Bands: one per client and file, each with its own ordinal address axis.
  var bands = D.groups.map(function (grp) { return { grp: grp, bounds: [], bos: [], top: 0, h: 0 }; });
  D.bos.forEach(function (b) {
    var band = bands[b.g];
    band.bos.push(b);
    for (var i = 0; i < b.rs.length; i++) band.bounds.push(b.rs[i][1], b.rs[i][2]);
    b.end = b.d === null ? D.end : b.d;
  });
  bands.forEach(function (band) {
    band.bounds.sort(function (x, y) { return x - y; });
    var u = [];
    for (var i = 0; i < band.bounds.length; i++) if (i === 0 || band.bounds[i] !== band.bounds[i - 1]) u.push(band.bounds[i]);
    band.bounds = u;
    band.rank = new Map();
    u.forEach(function (a, i) { band.rank.set(a, i); });
  });

  // View: seq across (x0 + px * perPx), bands stacked down (scrolled by y0).
  var W = 0, H = 0, dpr = window.devicePixelRatio || 1;
  var x0 = 0, perPx = 1, y0 = 0, slot = 8;
  var selected = null, marker = null;
  function layout() {
    W = cv.clientWidth; H = cv.clientHeight;
    cv.width = Math.max(1, Math.floor(W * dpr)); cv.height = Math.max(1, Math.floor(H * dpr));
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  function fit() {
    var slots = 0;
    bands.forEach(function (band) { slots += Math.max(1, band.bounds.length - 1); });
    slot = Math.max(0.001, Math.min(40, (H - AXIS - BAND_GAP * bands.length - 10) / Math.max(1, slots)));
    place();
    x0 = 0; perPx = Math.max(D.end, 1) / Math.max(1, W - GUTTER - 10); y0 = 0;
  }
  // Bands from the slot height (fit, and shift+wheel zoom the addresses).
  function place() {
    var top = 0;
    bands.forEach(function (band) { band.top = top + BAND_GAP; band.h = Math.max(1, band.bounds.length - 1) * slot; top = band.top + band.h; });
  }
  var X = function (seq) { return GUTTER + (seq - x0) / perPx; };
  var S = function (px) { return x0 + (px - GUTTER) * perPx; };
  var Y = function (band, a) { return band.top + band.rank.get(a) * slot - y0; };

  function draw() {
    g.clearRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
    var lo = S(0), hi = S(W);
    bands.forEach(function (band, bi) {
      var by = band.top - y0;
      if (by > H || by + band.h < -BAND_GAP) return;
      g.fillStyle = '#333';
      g.fillText(band.grp.label + ' (' + band.bos.length + ' BOs)', 4, by - 6);
      g.strokeStyle = '#ddd'; g.strokeRect(0.5, by - 0.5, W - 1, band.h + 1);
      // Address labels in the gutter: every boundary when there is room, else every k-th.
      var every = Math.max(1, Math.ceil(12 / slot));
      g.fillStyle = '#666';
      for (var q = 0; q < band.bounds.length; q += every) {
        var ly = by + q * slot;
        if (ly >= -2 && ly <= H) g.fillText(hex(band.bounds[q]), 2, ly + 4);
      }
      var hue = (bi * 67) % 360;
      for (var i = 0; i < band.bos.length; i++) {
        var b = band.bos[i];
        if (b.end < lo || b.c > hi) continue;
        for (var k = 0; k < b.rs.length; k++) {
          var r = b.rs[k], s1 = k + 1 < b.rs.length ? b.rs[k + 1][0] : b.end;
          var xa = X(r[0]), xb = Math.max(xa + 1, X(s1)), ya = Y(band, r[1]), yb = Math.max(ya + 1, Y(band, r[2]) - (slot > 4 ? 1 : 0));
          if (yb < 0 || ya > H) continue;
          g.fillStyle = 'hsl(' + hue + ',55%,' + (b.d === null ? 78 : 68) + '%)';
          g.fillRect(xa, ya, xb - xa, yb - ya);
          if (b === selected) { g.strokeStyle = '#000'; g.lineWidth = 2; g.strokeRect(xa + 1, ya + 1, xb - xa - 2, yb - ya - 2); g.lineWidth = 1; }
        }
        var cur = b.rs[0], top0 = Y(band, cur[1]);
        for (var m = 0; m < b.m.length; m++) {
          var mk = b.m[m], mx = X(mk[0]);
          if (mx < -4 || mx > W + 4) continue;
          var rr = rangeAt(b, mk[0]), ya2 = Y(band, rr[1]), yb2 = Y(band, rr[2]);
          g.fillStyle = KIND_COLOR[mk[1]] || '#555';
          if (mk[1] === 'dedup') { g.fillRect(mx - 2, (ya2 + yb2) / 2 - 2, 4, 4); }
          else g.fillRect(mx - (mk[1] === 'split' || mk[1] === 'evict' ? 1.5 : 0.5), Math.min(ya2, top0), mk[1] === 'split' || mk[1] === 'evict' ? 3 : 1, Math.max(yb2, top0 + 2) - Math.min(ya2, top0));
        }
      }
    });
    // The time axis: trace seq along the bottom.
    g.fillStyle = '#fff'; g.fillRect(0, H - AXIS, W, AXIS);
    g.fillStyle = '#444';
    var step = Math.pow(10, Math.ceil(Math.log10(Math.max(1e-9, perPx * 90))));
    for (var tk = Math.ceil(S(GUTTER) / step) * step; tk <= hi; tk += step) { var tx = X(tk); g.fillRect(tx, H - AXIS, 1, 4); g.fillText('#' + Math.round(tk), tx + 2, H - 5); }
    if (marker !== null) { g.fillStyle = 'rgba(208,2,27,0.6)'; g.fillRect(X(marker) - 0.5, 0, 1, H); }
  }
  function rangeAt(b, seq) {
    var r = b.rs[0];
    for (var k = 1; k < b.rs.length && b.rs[k][0] <= seq; k++) r = b.rs[k];
    return r;
  }
  var pending = false;
  function redraw() { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); } }

  // Hit test: the BO whose bar covers (seq, y), and the mark nearest the pointer on it (within 4 px).
  function hit(px, py) {
    var seq = S(px);
    for (var bi = 0; bi < bands.length; bi++) {
      var band = bands[bi], by = band.top - y0;
      if (py < by || py > by + band.h) continue;
      for (var i = 0; i < band.bos.length; i++) {
        var b = band.bos[i];
        if (seq < b.c - 2 * perPx || seq > b.end + 2 * perPx) continue;
        var r = rangeAt(b, seq);
        if (py < Y(band, r[1]) - 0.5 || py > Math.max(Y(band, r[2]), Y(band, r[1]) + 1) + 0.5) continue;
        var best = null, bd = 5;
        for (var m = 0; m < b.m.length; m++) { var d = Math.abs(X(b.m[m][0]) - px); if (d < bd) { bd = d; best = b.m[m]; } }
        return { bo: b, mark: best, range: r };
      }
    }
    return null;
  }
  function boTitle(b) { return 'BO handle ' + b.h + (b.r !== null ? ' (res ' + b.r + ')' : '') + ' — ' + D.groups[b.g].label; }
  function recLine(seq) { var r = rec(seq); return r ? '#' + seq + ' ' + (r.name || r.t) + (r.result !== undefined ? ' → ' + r.result : '') : '#' + seq; }

  cv.addEventListener('mousemove', function (e) {
    var t0 = performance.now();
    var h = hit(e.offsetX, e.offsetY);
    if (!h) { tip.style.display = 'none'; tip.dataset.bo = ''; }
    else {
      var b = h.bo, r = h.range;
      var lines = [boTitle(b), '[' + hex(r[1]) + ', ' + hex(r[2]) + ') ' + (r[2] - r[1]) / 4096 + ' pages',
        'created ' + recLine(b.ci !== null ? b.ci : b.c), b.d === null ? 'alive at the end' : 'deleted #' + b.d + ' (' + b.w + ')'];
      if (h.mark) lines.push(h.mark[1] + ' #' + h.mark[0] + ': ' + h.mark[2] + (h.mark[3] !== null ? '\ncaused by ' + recLine(h.mark[3]) : ''));
      tip.textContent = lines.join('\n');
      tip.dataset.bo = String(b.i);
      tip.style.display = 'block';
      tip.style.left = Math.min(e.offsetX + 14, W - 300) + 'px';
      tip.style.top = Math.min(e.offsetY + 14, H - 90) + 'px';
    }
    requestAnimationFrame(function () { window.__hoverMs = performance.now() - t0; window.__hoverBo = h ? h.bo.i : -1; });
  });
  cv.addEventListener('mouseleave', function () { tip.style.display = 'none'; });

  function el(tag, text, cls) { var n = document.createElement(tag); if (text !== undefined) n.textContent = text; if (cls) n.className = cls; return n; }
  function showRecord(seq, into) {
    var r = rec(seq);
    into.appendChild(el('pre', r ? JSON.stringify(r, null, 1) : '#' + seq + ' (not kept)'));
  }
  function link(text, seq) {
    var a = el('a', text);
    a.dataset.seq = String(seq);
    a.addEventListener('click', function () { marker = seq; redraw(); var box = el('div'); showRecord(seq, box); a.after(box); });
    return a;
  }
  function select(b) {
    selected = b;
    detail.replaceChildren();
    detail.dataset.bo = String(b.i);
    detail.appendChild(el('h3', boTitle(b)));
    detail.appendChild(el('div', 'created by'));
    showRecord(b.ci !== null ? b.ci : b.c, detail);
    b.m.forEach(function (mk) {
      var row = el('div', mk[1] + ' #' + mk[0] + ': ' + mk[2] + ' ', 'mark ' + mk[1]);
      if (mk[4] !== null) row.appendChild(link('ioctl #' + mk[4], mk[4]));
      if (mk[3] !== null) { row.appendChild(document.createTextNode(' ')); row.appendChild(link('memory event #' + mk[3], mk[3])); }
      detail.appendChild(row);
    });
    var sel = document.querySelector('#bo-list li.sel');
    if (sel) sel.classList.remove('sel');
    var li = document.querySelector('#bo-list li[data-bo="' + b.i + '"]');
    if (li) li.classList.add('sel');
    redraw();
  }
  cv.addEventListener('click', function (e) { var h = hit(e.offsetX, e.offsetY); if (h) select(h.bo); });

  // Wheel zooms time around the pointer; drag pans (time and bands).
  cv.addEventListener('wheel', function (e) {
    e.preventDefault();
    var f = Math.exp(e.deltaY * 0.002);
    if (e.shiftKey) {
      var yAt = e.offsetY + y0, keep = yAt / slot;
      slot = Math.max(0.001, slot / f); place(); y0 = keep * slot - e.offsetY; redraw(); return;
    }
    var seq = S(e.offsetX);
    perPx = Math.max(0.01, perPx * f); x0 = seq - (e.offsetX - GUTTER) * perPx; redraw();
  }, { passive: false });
  var drag = null;
  cv.addEventListener('mousedown', function (e) { drag = { x: e.clientX, y: e.clientY, x0: x0, y0: y0 }; });
  window.addEventListener('mouseup', function () { drag = null; });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    x0 = drag.x0 - (e.clientX - drag.x) * perPx; y0 = drag.y0 - (e.clientY - drag.y); redraw();
  });
  window.addEventListener('resize', function () { layout(); fit(); draw(); });

  // For tests and the benchmark: where BO i's first bar is drawn now (canvas px), and selecting one.
  window.__lifetime = {
    barCenter: function (i) {
      var b = D.bos[i], band = bands[b.g], r = b.rs[0], s1 = b.rs.length > 1 ? b.rs[1][0] : b.end;
      return { x: (X(r[0]) + Math.max(X(r[0]) + 1, X(s1))) / 2, y: (Y(band, r[1]) + Y(band, r[2])) / 2 };
    },
    select: function (i) { select(D.bos[i]); },
  };
  layout(); fit(); draw();
  requestAnimationFrame(function () { window.__firstPaintMs = performance.now(); document.body.dataset.painted = '1'; });

  // The list: one entry per BO, filled in chunks after the first paint (a 100k-BO trace must paint first).
  var list = document.getElementById('bo-list'), next = 0, CHUNK = 2000;
  function fill() {
    var frag = document.createDocumentFragment();
    for (var end = Math.min(D.bos.length, next + CHUNK); next < end; next++) {
      var b = D.bos[next], kinds = {};
      b.m.forEach(function (mk) { kinds[mk[1]] = 1; });
      var li = el('li', boTitle(b) + ', created #' + b.c + (b.d === null ? ', alive' : ', deleted #' + b.d + ' (' + b.w + ')') + (Object.keys(kinds).length ? ': ' + Object.keys(kinds).join(' ') : ''), 'bo');
      li.dataset.bo = String(b.i);
      li.dataset.marks = Object.keys(kinds).join(' ');
      li.dataset.deleted = b.d === null ? '' : b.w;
      li.addEventListener('click', (function (bo) { return function () { select(bo); }; })(b));
      frag.appendChild(li);
    }
    list.appendChild(frag);
    if (next < D.bos.length) setTimeout(fill, 0); else document.body.dataset.listed = '1';
  }
  setTimeout(fill, 0);
})();
`;
