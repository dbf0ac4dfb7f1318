// MAGE motion viewer: skeletons in 3D on a canvas 2D context, vanilla JS, no libraries.
// Reads the JSON in <script id="mage-data"> (written by mage.viz.viewer):
//   {fps, num_frames, parents[J], joint_names[J], tracked[], tracker: {color, label},
//    motions: [{name, num_frames, colors: {left, right, center},
//               positions: flat int array, millimetres, frame-major (T*J*3)}]}
// The colours come from mage.viz.style (the same as the video's); PALETTES is only the
// fallback for pages without them.
// World z-up, metres. The current frame is mirrored into document.title,
// #frame-index and body[data-frame] so that tests can read it. Address options:
// viewer.html#frame=120&paused&side&nofollow.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("mage-data").textContent);
  const J = data.parents.length, T = data.num_frames, fps = data.fps;
  const PALETTES = [
    { left: "#1f77b4", right: "#d62728", center: "#404040" },
    { left: "#17becf", right: "#ff7f0e", center: "#7f7f7f" },
    { left: "#9467bd", right: "#8c564b", center: "#555555" },
    { left: "#bcbd22", right: "#e377c2", center: "#999999" },
  ];
  const TRACKER = (data.tracker && data.tracker.color) || "#19b34a", GRID = "#d0d0d0", SHADOW = "rgba(0,0,0,0.10)";
  const SIDE_GAP = 1.2;  // metres between skeletons in "side by side"

  const side = data.joint_names.map(n => n.startsWith("left_") ? "left" : n.startsWith("right_") ? "right" : "center");
  const root = data.parents.indexOf(-1);
  const motions = data.motions.map((m, i) => ({
    name: m.name, T: m.num_frames, pos: Float32Array.from(m.positions, v => v / 1000),
    pal: m.colors || PALETTES[i % PALETTES.length],
  }));

  // --- DOM ---------------------------------------------------------------------------
  const $ = id => document.getElementById(id);
  const canvas = $("view"), ctx = canvas.getContext("2d");
  const playBtn = $("play"), timeline = $("timeline"), speedSel = $("speed");
  const followBox = $("follow"), sideBox = $("side"), frameOut = $("frame-index");
  timeline.max = String(T - 1);
  const legend = $("legend");
  motions.forEach(m => {
    const row = document.createElement("div");
    const sw = document.createElement("span");
    sw.className = "sw";
    sw.style.background = `linear-gradient(90deg, ${m.pal.left} 50%, ${m.pal.right} 50%)`;
    row.appendChild(sw);
    row.appendChild(document.createTextNode(`${m.name} (left | right)`));  // text only: names are data
    legend.appendChild(row);
  });
  if (data.tracked.length) {
    const row = document.createElement("div");
    row.innerHTML = `<span class="ring" style="border-color:${TRACKER}"></span>`;
    row.appendChild(document.createTextNode((data.tracker && data.tracker.label) || "tracked (head, wrists)"));
    legend.appendChild(row);
  }

  // --- state ---------------------------------------------------------------------------
  const cam = { azim: -Math.PI / 3, elev: 0.22, dist: 4.2, fov: 0.75, target: [0, 0, 0.9] };  // azim as matplotlib's -60 deg
  const DEFAULT_CAM = { ...cam };
  let frame = 0, playing = true, clock = 0, last = null;

  function joint(m, t, j) {
    const f = Math.min(t, m.T - 1), k = (f * J + j) * 3;
    return [m.pos[k], m.pos[k + 1], m.pos[k + 2]];
  }

  function offsetOf(i) {  // side by side: spread along the camera's right vector
    if (!sideBox.checked || motions.length < 2) return [0, 0, 0];
    const s = (i - (motions.length - 1) / 2) * SIDE_GAP;
    return [-Math.sin(cam.azim) * s, Math.cos(cam.azim) * s, 0];
  }

  // --- camera --------------------------------------------------------------------------
  function basis() {
    const ce = Math.cos(cam.elev), se = Math.sin(cam.elev);
    const back = [ce * Math.cos(cam.azim), ce * Math.sin(cam.azim), se];  // target -> eye
    const eye = cam.target.map((v, i) => v + cam.dist * back[i]);
    const fwd = back.map(v => -v);
    let right = [fwd[1], -fwd[0], 0];  // fwd x up(0,0,1)
    const n = Math.hypot(right[0], right[1]) || 1;
    right = right.map(v => v / n);
    const up = [right[1] * fwd[2] - right[2] * fwd[1], right[2] * fwd[0] - right[0] * fwd[2],
                right[0] * fwd[1] - right[1] * fwd[0]];
    return { eye, fwd, right, up };
  }

  function projector(w, h) {
    const b = basis(), f = 0.5 * h / Math.tan(cam.fov / 2);
    return p => {
      const v = [p[0] - b.eye[0], p[1] - b.eye[1], p[2] - b.eye[2]];
      const z = v[0] * b.fwd[0] + v[1] * b.fwd[1] + v[2] * b.fwd[2];
      if (z < 0.05) return null;  // behind the camera
      const x = v[0] * b.right[0] + v[1] * b.right[1] + v[2] * b.right[2];
      const y = v[0] * b.up[0] + v[1] * b.up[1] + v[2] * b.up[2];
      return [w / 2 + f * x / z, h / 2 - f * y / z, z];
    };
  }

  // --- drawing -------------------------------------------------------------------------
  function resize() {
    const dpr = window.devicePixelRatio || 1, r = canvas.getBoundingClientRect();
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    return dpr;
  }

  function line(a, b, color, width) {
    if (!a || !b) return;
    ctx.strokeStyle = color; ctx.lineWidth = width;
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  }

  function draw() {
    const dpr = resize(), w = canvas.width, h = canvas.height;
    if (followBox.checked) {
      const p = joint(motions[0], frame, root);
      cam.target = [p[0], p[1], 0.9];
    }
    const P = projector(w, h);
    ctx.fillStyle = "#fafafa"; ctx.fillRect(0, 0, w, h);
    ctx.lineCap = "round";
    // floor grid, 0.5 m, world-fixed, around the target
    const step = 0.5, R = 5, gx = Math.round(cam.target[0] / step) * step, gy = Math.round(cam.target[1] / step) * step;
    for (let k = -R / step; k <= R / step; k++) {
      line(P([gx + k * step, gy - R, 0]), P([gx + k * step, gy + R, 0]), GRID, dpr);
      line(P([gx - R, gy + k * step, 0]), P([gx + R, gy + k * step, 0]), GRID, dpr);
    }
    // skeletons: collect bones and joints of all motions, draw far to near
    const items = [];
    motions.forEach((m, i) => {
      const off = offsetOf(i);
      const pts = [];
      for (let j = 0; j < J; j++) {
        const q = joint(m, frame, j);
        pts.push([q[0] + off[0], q[1] + off[1], q[2] + off[2]]);
      }
      for (let j = 0; j < J; j++) {
        const p = data.parents[j];
        if (p < 0) continue;
        line(P([pts[p][0], pts[p][1], 0]), P([pts[j][0], pts[j][1], 0]), SHADOW, 5 * dpr);  // shadow
        const a = P(pts[p]), b = P(pts[j]);
        if (a && b) items.push({ z: (a[2] + b[2]) / 2, a, b, color: m.pal[side[j]], kind: "bone" });
      }
      for (let j = 0; j < J; j++) {
        const a = P(pts[j]);
        if (a) items.push({ z: a[2] - 1e-3, a, color: m.pal[side[j]], kind: "joint",
                            tracked: data.tracked.includes(j) });
      }
    });
    items.sort((u, v) => v.z - u.z);
    const focal = 0.5 * h / Math.tan(cam.fov / 2);  // pixels per metre at 1 m depth
    for (const it of items) {
      if (it.kind === "bone") {
        line(it.a, it.b, it.color, Math.max(1.5 * dpr, focal * 0.028 / it.z));
      } else {
        const r = Math.max(2 * dpr, focal * 0.022 / it.a[2]);
        ctx.fillStyle = it.color;
        ctx.beginPath(); ctx.arc(it.a[0], it.a[1], r, 0, 2 * Math.PI); ctx.fill();
        if (it.tracked) {
          ctx.strokeStyle = TRACKER; ctx.lineWidth = 3 * dpr;
          ctx.beginPath(); ctx.arc(it.a[0], it.a[1], r + 7 * dpr, 0, 2 * Math.PI); ctx.stroke();
        }
      }
    }
  }

  // --- frame bookkeeping ---------------------------------------------------------------
  function setFrame(f) {
    frame = ((Math.round(f) % T) + T) % T;
    timeline.value = String(frame);
    frameOut.textContent = `frame ${frame} / ${T - 1}  ·  ${(frame / fps).toFixed(2)} s`;
    document.title = `MAGE viewer · frame ${frame}`;
    document.body.dataset.frame = String(frame);
  }

  function setPlaying(on) {
    playing = on;
    playBtn.textContent = on ? "Pause" : "Play";
    last = null;
    clock = frame / fps;
  }

  // Time advances from both the display loop and a timer: browsers pause
  // requestAnimationFrame in hidden tabs and headless runs, timers keep going.
  function advance() {
    const now = performance.now();
    if (playing) {
      if (last !== null) {
        clock += Math.min(0.25, (now - last) / 1000) * parseFloat(speedSel.value);
        if (clock * fps >= T) clock %= T / fps;
        setFrame(Math.floor(clock * fps));
      }
      last = now;
    }
  }

  function tick() {
    advance();
    draw();
    requestAnimationFrame(tick);
  }

  // --- input -----------------------------------------------------------------------------
  playBtn.addEventListener("click", () => setPlaying(!playing));
  timeline.addEventListener("input", () => { setPlaying(false); setFrame(+timeline.value); });
  followBox.addEventListener("change", draw);
  sideBox.addEventListener("change", draw);
  let drag = null;
  canvas.addEventListener("pointerdown", e => {
    drag = { x: e.clientX, y: e.clientY, azim: cam.azim, elev: cam.elev };
    canvas.setPointerCapture(e.pointerId); canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", e => {
    if (!drag) return;
    cam.azim = drag.azim - (e.clientX - drag.x) * 0.008;
    cam.elev = Math.max(-0.1, Math.min(1.5, drag.elev + (e.clientY - drag.y) * 0.006));
  });
  const endDrag = () => { drag = null; canvas.classList.remove("dragging"); };
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("wheel", e => {
    e.preventDefault();
    cam.dist = Math.max(1, Math.min(30, cam.dist * Math.exp(e.deltaY * 0.001)));
  }, { passive: false });
  canvas.addEventListener("dblclick", () => Object.assign(cam, { ...DEFAULT_CAM, target: cam.target }));
  window.addEventListener("keydown", e => {
    if (e.target.tagName === "SELECT") return;
    if (e.code === "Space") { e.preventDefault(); setPlaying(!playing); }
    else if (e.code === "ArrowRight") { setPlaying(false); setFrame(frame + 1); }
    else if (e.code === "ArrowLeft") { setPlaying(false); setFrame(frame - 1); }
  });

  // Start-up options in the address: #frame=120&paused&side&nofollow
  const opts = new URLSearchParams(location.hash.slice(1));
  if (opts.has("side")) sideBox.checked = true;
  if (opts.has("nofollow")) followBox.checked = false;
  setFrame(parseInt(opts.get("frame") || "0", 10) || 0);
  setPlaying(!opts.has("paused"));
  draw();
  setInterval(advance, 100);
  requestAnimationFrame(tick);
})();
