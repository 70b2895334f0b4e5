// The demo page: the exported face model runs here with onnxruntime-web (WebAssembly), as singleshot.Detector runs
// it on ONNX Runtime in Python: the same resize, padding, graph (decoding inside) and NMS rules, so the boxes agree
// with the server's to a fraction of a pixel. The runtime's files are served by `singleshot serve` from the npm
// package (`make web`): no CDN, no request leaves the server's host.
import * as ort from "/static/ort/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = "/static/ort/";
// More threads need SharedArrayBuffer, which needs cross-origin isolation headers; one thread works everywhere and
// a 640-pixel frame of this model takes a few tens of milliseconds on it.
ort.env.wasm.numThreads = 1;

const $ = (id) => document.getElementById(id);
const status = $("status");
const view = $("view");
const video = $("video");
let config = null;
let faceSession = null;
const attributeSessions = {};
let pointSession = null;
let cameraStream = null;

function say(text, isError = false) {
  status.textContent = text;
  status.classList.toggle("error", isError);
}

// Python's round() (half to even): resize_keep_aspect computes output sizes with it.
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---------- resizing as OpenCV does (singleshot.inference.resize_keep_aspect) ----------

// Per output index along one axis: the source pixels and weights of cv2.INTER_AREA (each output pixel averages
// the source interval it covers, partial pixels by their overlap) for a shrink by `src / dst`.
function areaTaps(src, dst) {
  const scale = src / dst;
  const taps = [];
  for (let d = 0; d < dst; d++) {
    const f0 = d * scale;
    const f1 = Math.min(f0 + scale, src);
    const cell = f1 - f0;
    const list = [];
    for (let s = Math.floor(f0); s < Math.ceil(f1 - 1e-9); s++) {
      const w = Math.min(s + 1, f1) - Math.max(s, f0);
      if (w > 1e-9) list.push([s, w / cell]);
    }
    taps.push(list);
  }
  return taps;
}

// cv2.INTER_LINEAR for an enlargement: pixel centres aligned (x + 0.5) / scale - 0.5, edges clamped.
function linearTaps(src, dst) {
  const scale = src / dst;
  const taps = [];
  for (let d = 0; d < dst; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let a = f - s;
    if (s < 0) { s = 0; a = 0; }
    if (s >= src - 1) { s = src - 1; a = 0; }
    taps.push(a > 0 ? [[s, 1 - a], [s + 1, a]] : [[s, 1]]);
  }
  return taps;
}

// RGBA `data` (w x h) -> planar float RGB (3, rh, rw) written into `out` (3, H, W) at the top-left, separably.
function resizeInto(data, w, h, rw, rh, out, W, H) {
  const shrink = rw < w || rh < h;
  const tx = (shrink ? areaTaps : linearTaps)(w, rw);
  const ty = (shrink ? areaTaps : linearTaps)(h, rh);
  const rows = new Float32Array(3 * h * rw); // horizontal pass: (3, h, rw)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < rw; x++) {
      let r = 0, g = 0, b = 0;
      for (const [s, wt] of tx[x]) {
        const i = (y * w + s) * 4;
        r += data[i] * wt; g += data[i + 1] * wt; b += data[i + 2] * wt;
      }
      const o = y * rw + x;
      rows[o] = r; rows[h * rw + o] = g; rows[2 * h * rw + o] = b;
    }
  }
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < rh; y++) {
      for (let x = 0; x < rw; x++) {
        let v = 0;
        for (const [s, wt] of ty[y]) v += rows[c * h * rw + s * rw + x] * wt;
        // OpenCV rounds to uint8 after resizing; so do we, so the network sees the same numbers
        out[c * H * W + y * W + x] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
}

// ---------- the detector ----------

function preprocess(data, w, h, size) {
  const scale = size / Math.max(w, h);
  const rw = scale === 1 ? w : Math.max(1, pyRound(w * scale));
  const rh = scale === 1 ? h : Math.max(1, pyRound(h * scale));
  const m = config.pad_multiple;
  const W = Math.ceil(rw / m) * m, H = Math.ceil(rh / m) * m;
  const blob = new Float32Array(3 * H * W);
  for (let c = 0; c < 3; c++) blob.fill(config.mean_rgb[c], c * H * W, (c + 1) * H * W); // padding: the mean colour
  if (scale === 1) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++)
      blob[c * H * W + y * W + x] = data[(y * w + x) * 4 + c];
  } else {
    resizeInto(data, w, h, rw, rh, blob, W, H);
  }
  return { tensor: new ort.Tensor("float32", blob, [1, 3, H, W]), scale };
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]) + Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

// singleshot.deploy.numpy_ops.postprocess_numpy for one image: per class, scores >= minScore, the best
// pre_nms_top_k, greedy NMS (IoU > max_overlap suppresses; ties keep the earlier prior), optional box voting,
// then the best top_k. Rows are [x1, y1, x2, y2, (points...)].
function postprocess(rows, scores, numClasses, minScore) {
  const found = [];
  for (let c = 0; c < numClasses; c++) {
    let idx = [];
    const P = scores.length / numClasses;
    for (let p = 0; p < P; p++) if (scores[p * numClasses + c] >= minScore) idx.push(p);
    const score = (p) => scores[p * numClasses + c];
    idx.sort((a, b) => score(b) - score(a) || a - b);
    idx = idx.slice(0, config.pre_nms_top_k);
    const keep = [];
    const alive = new Array(idx.length).fill(true);
    for (let i = 0; i < idx.length; i++) {
      if (!alive[i]) continue;
      keep.push(i);
      for (let j = i + 1; j < idx.length; j++) if (alive[j] && iou(rows[idx[i]], rows[idx[j]]) > config.max_overlap) alive[j] = false;
    }
    for (const i of keep) {
      let row = rows[idx[i]];
      if (config.vote_iou !== null) { // box voting: the score-weighted mean of the candidates overlapping the kept box
        const sum = new Array(row.length).fill(0);
        let total = 0;
        for (const p of idx) {
          if (iou(rows[idx[i]], rows[p]) >= config.vote_iou) {
            total += score(p);
            rows[p].forEach((v, k) => { sum[k] += v * score(p); });
          }
        }
        if (total > 0) row = sum.map((v) => v / Math.max(total, 1e-12));
      }
      found.push({ row, score: score(idx[i]), label: c + 1 });
    }
  }
  found.sort((a, b) => b.score - a.score);
  return found.slice(0, config.top_k);
}

// one scale: the photo at long side `size` through the graph and postprocess, boxes in the photo's pixels
async function detectScale(data, w, h, minScore, size) {
  const { tensor, scale } = preprocess(data, w, h, size);
  const out = await faceSession.run({ image: tensor });
  const boxes = out.boxes.data, scores = out.scores.data;
  const P = out.boxes.dims[1], C = out.scores.dims[2];
  const points = out.landmarks ? out.landmarks.data : null;
  const L = points ? out.landmarks.dims[2] : 0;
  const rows = [];
  for (let p = 0; p < P; p++) {
    const row = Array.from(boxes.subarray(p * 4, p * 4 + 4));
    if (points) row.push(...points.subarray(p * L, p * L + L));
    rows.push(row);
  }
  const clamp = (v, hi) => Math.min(Math.max(v / scale, 0), hi);
  return postprocess(rows, scores, C, minScore).map(({ row, score, label }) => ({
    box_xyxy: [clamp(row[0], w), clamp(row[1], h), clamp(row[2], w), clamp(row[3], h)],
    score,
    label,
    landmarks: points ? Array.from({ length: L / 2 }, (_, k) => [row[4 + 2 * k] / scale, row[5 + 2 * k] / scale]) : null,
    attributes: {},
  }));
}

// singleshot.postprocess.merge_large_faces: the large faces of the half-size pass; a large main face gives way
// when the surest half-size face overlapping it (IoU > max_overlap, same label) is large too; class-aware NMS
// settles the rest, by score (ties: main faces first, then the half-size ones, each in score order)
function mergeLargeFaces(main, coarse, largeSide) {
  const side = (f) => Math.max(f.box_xyxy[2] - f.box_xyxy[0], f.box_xyxy[3] - f.box_xyxy[1]);
  const large = coarse.filter((f) => side(f) >= largeSide);
  if (!large.length) return main;
  const kept = main.filter((m) => {
    if (side(m) < largeSide) return true;
    let best = null;
    for (const c of coarse) {
      if (c.label === m.label && iou(m.box_xyxy, c.box_xyxy) > config.max_overlap && (best === null || c.score > best.score)) best = c;
    }
    return best === null || side(best) < largeSide;
  });
  const all = kept.concat(large).map((f, i) => ({ f, i }));
  all.sort((a, b) => b.f.score - a.f.score || a.i - b.i);
  const alive = new Array(all.length).fill(true);
  const out = [];
  for (let i = 0; i < all.length; i++) {
    if (!alive[i]) continue;
    out.push(all[i].f);
    for (let j = i + 1; j < all.length; j++) {
      if (alive[j] && all[j].f.label === all[i].f.label && iou(all[i].f.box_xyxy, all[j].f.box_xyxy) > config.max_overlap) alive[j] = false;
    }
  }
  return out.slice(0, config.top_k);
}

async function detectInBrowser(data, w, h, minScore) {
  let faces = await detectScale(data, w, h, minScore, config.input_size);
  const pass = config.large_face_pass; // as singleshot.Detector: a photo enlarged that much runs again at half size
  if (pass && config.input_size >= pass.enlargement * Math.max(w, h)) {
    const coarse = await detectScale(data, w, h, minScore, pass.size);
    faces = mergeLargeFaces(faces, coarse, pass.large_px * Math.max(w, h) / config.input_size);
  }
  faces.forEach((f) => { delete f.label; });
  if (config.points && !config.landmarks) await locatePoints(config.points, data, w, h, faces);
  for (const [name, spec] of Object.entries(config.attributes)) {
    const probs = await scoreAttribute(name, spec, data, w, h, faces);
    faces.forEach((f, k) => { f.attributes[name] = probs[k]; });
  }
  return faces;
}

// singleshot.points.PointRefiner: the point network on a square of crop_scale x the box's long side around each
// box, at input_size pixels, cut as singleshot.landmarks.warp_crop(area_first=True) cuts it: a shrink of f =
// floor(1/s) >= 2 first takes f x f block means of the photo region (the photo's edge pixels repeated outside,
// rounded to a byte as cv2's area resize writes them), then each crop pixel is the mean of k x k bilinear samples
// of that (k the remaining shrink rounded up, at most 8; samples and means rounded to bytes as cv2 writes them);
// its points (crop pixels / input_size) are mapped back to the photo.
async function locatePoints(spec, data, w, h, faces) {
  if (!faces.length) return;
  const S = spec.input_size;
  const x = new Float32Array(faces.length * 3 * S * S);
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  const at = (px, py, c) => data[(clamp(py, 0, h - 1) * w + clamp(px, 0, w - 1)) * 4 + c];
  const frames = faces.map((face, k) => {
    const [x1, y1, x2, y2] = face.box_xyxy;
    const s = S / Math.max(spec.crop_scale * Math.max(x2 - x1, y2 - y1), 1e-6);
    const tx = S / 2 - s * (x1 + x2) / 2, ty = S / 2 - s * (y1 + y2) / 2; // crop = s * photo + t
    let src = at, ss = s, stx = tx, sty = ty;
    const f = Math.floor(1 / s + 1e-6);
    if (f >= 2) {
      const X0 = Math.floor(-tx / s) - f, Y0 = Math.floor(-ty / s) - f;
      const nx = Math.ceil((Math.ceil((S - tx) / s) + f - X0) / f), ny = Math.ceil((Math.ceil((S - ty) / s) + f - Y0) / f);
      const small = new Uint8Array(nx * ny * 3);
      for (let by = 0; by < ny; by++) {
        for (let bx = 0; bx < nx; bx++) {
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            for (let j = 0; j < f; j++) for (let i = 0; i < f; i++) sum += at(X0 + bx * f + i, Y0 + by * f + j, c);
            small[(by * nx + bx) * 3 + c] = Math.round(sum / (f * f));
          }
        }
      }
      src = (px, py, c) => small[(clamp(py, 0, ny - 1) * nx + clamp(px, 0, nx - 1)) * 3 + c];
      ss = s * f; stx = s * (X0 + (f - 1) / 2) + tx; sty = s * (Y0 + (f - 1) / 2) + ty;
    }
    const K = Math.min(8, Math.max(1, Math.ceil(1 / ss - 1e-6)));
    const fs = ss * K, ftx = stx * K + (K - 1) / 2, fty = sty * K + (K - 1) / 2; // the K-times finer grid
    const sum = [0, 0, 0];
    for (let v = 0; v < S; v++) {
      for (let u = 0; u < S; u++) {
        sum[0] = sum[1] = sum[2] = 0;
        for (let j = 0; j < K; j++) {
          const sy = (v * K + j - fty) / fs, y0 = Math.floor(sy), ay = sy - y0;
          for (let i = 0; i < K; i++) {
            const sx = (u * K + i - ftx) / fs, x0 = Math.floor(sx), ax = sx - x0;
            for (let c = 0; c < 3; c++) {
              sum[c] += Math.round((1 - ay) * ((1 - ax) * src(x0, y0, c) + ax * src(x0 + 1, y0, c))
                + ay * ((1 - ax) * src(x0, y0 + 1, c) + ax * src(x0 + 1, y0 + 1, c)));
            }
          }
        }
        for (let c = 0; c < 3; c++) {
          x[((k * 3 + c) * S + v) * S + u] = (Math.round(sum[c] / (K * K)) - spec.mean_rgb[c]) / spec.std_rgb[c];
        }
      }
    }
    return [s, tx, ty];
  });
  const out = await pointSession.run({ crops: new ort.Tensor("float32", x, [faces.length, 3, S, S]) });
  const P = out.points.dims[1] / 2;
  faces.forEach((face, k) => {
    const [s, tx, ty] = frames[k];
    face.landmarks = Array.from({ length: P }, (_, p) => [
      (out.points.data[k * 2 * P + 2 * p] * S - tx) / s, (out.points.data[k * 2 * P + 2 * p + 1] * S - ty) / s]);
  });
}

// singleshot.landmarks.TEMPLATE_112: the five points of a 112x112 aligned face crop.
const TEMPLATE_112 = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

// singleshot.landmarks.similarity_transform in 2D: the least-squares rotation, scale and shift taking the known
// points onto the template; returned as its inverse (crop pixel -> photo pixel), which sampling needs. Null with
// fewer than two known points.
function alignment(points, S, scale) {
  const pairs = [];
  points.forEach(([px, py], i) => {
    if (Number.isFinite(px) && Number.isFinite(py)) {
      pairs.push([px, py, ((TEMPLATE_112[i][0] - 56) / scale + 56) * S / 112, ((TEMPLATE_112[i][1] - 56) / scale + 56) * S / 112]);
    }
  });
  if (pairs.length < 2) return null;
  const n = pairs.length;
  const [msx, msy, mdx, mdy] = [0, 1, 2, 3].map((j) => pairs.reduce((a, p) => a + p[j], 0) / n);
  let re = 0, im = 0, norm = 0;  // a = sum(d conj(s)) / sum |s|^2 with s, d centred, as complex numbers
  for (const [sx, sy, dx, dy] of pairs) {
    const ax = sx - msx, ay = sy - msy, bx = dx - mdx, by = dy - mdy;
    re += bx * ax + by * ay; im += by * ax - bx * ay; norm += ax * ax + ay * ay;
  }
  if (norm <= 0) return null;
  re /= norm; im /= norm;
  const det = re * re + im * im;  // inverse of [[re, -im], [im, re]]
  const [ir, ii] = [re / det, -im / det];
  // photo = inverse(crop - t), t = mean_d - a mean_s
  const tx = mdx - (re * msx - im * msy), ty = mdy - (im * msx + re * msy);
  return (u, v) => [ir * (u - tx) - ii * (v - ty), ii * (u - tx) + ir * (v - ty)];
}

// singleshot.attributes.data.square_crops: a square of crop_scale x the box's long side around its centre, warped
// to input_size pixels bilinearly (pixel centres at integer coordinates, as cv2.warpAffine), outside filled with
// the mean colour; for an attribute trained on aligned crops (spec.align), aligned_crops: the face's five points
// onto the template instead, where it has two known points. Then normalised and scored, optionally averaged with
// the mirrored crop.
async function scoreAttribute(name, spec, data, w, h, faces) {
  if (!faces.length) return [];
  const S = spec.input_size;
  const fill = spec.mean_rgb.map(Math.round);
  const x = new Float32Array(faces.length * 3 * S * S * (spec.flip_tta ? 2 : 1));
  const at = (px, py, c) => (px < 0 || py < 0 || px >= w || py >= h ? fill[c] : data[(py * w + px) * 4 + c]);
  faces.forEach((face, k) => {
    const [x1, y1, x2, y2] = face.box_xyxy;
    let source = spec.align && face.landmarks ? alignment(face.landmarks, S, spec.crop_scale) : null;
    if (!source) {
      const side = Math.max(x2 - x1, y2 - y1, 1) * (spec.align ? 1 : spec.crop_scale);
      const s = S / side, cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
      source = (u, v) => [(u - (S / 2 - s * cx)) / s, (v - (S / 2 - s * cy)) / s];
    }
    for (let v = 0; v < S; v++) {
      for (let u = 0; u < S; u++) {
        const [sx, sy] = source(u, v);
        const y0 = Math.floor(sy), ay = sy - y0;
        const x0 = Math.floor(sx), ax = sx - x0;
        for (let c = 0; c < 3; c++) {
          const value = Math.round((1 - ay) * ((1 - ax) * at(x0, y0, c) + ax * at(x0 + 1, y0, c))
            + ay * ((1 - ax) * at(x0, y0 + 1, c) + ax * at(x0 + 1, y0 + 1, c)));
          const norm = (value - spec.mean_rgb[c]) / spec.std_rgb[c];
          x[((k * 3 + c) * S + v) * S + u] = norm;
          if (spec.flip_tta) x[(((faces.length + k) * 3 + c) * S + v) * S + (S - 1 - u)] = norm;
        }
      }
    }
  });
  const n = faces.length * (spec.flip_tta ? 2 : 1);
  const out = await attributeSessions[name].run({ crops: new ort.Tensor("float32", x, [n, 3, S, S]) });
  const sig = Array.from(out.logits.data, (z) => 1 / (1 + Math.exp(-z)));
  return faces.map((_, k) => (spec.flip_tta ? (sig[k] + sig[faces.length + k]) / 2 : sig[k]));
}

async function detectOnServer(blob, minScore) {
  const form = new FormData();
  form.append("image", blob, "photo");
  const names = Object.keys(config.attributes).join(",");
  const response = await fetch(`/detect?min_score=${minScore}&attributes=${encodeURIComponent(names)}`, { method: "POST", body: form });
  const answer = await response.json();
  if (!response.ok) throw new Error(`server: ${answer.detail || response.status}`);
  return answer.faces;
}

// ---------- drawing ----------

const POINT_COLOURS = ["#0080ff", "#0080ff", "#00c800", "#ff0000", "#ff0000"]; // eyes, nose, mouth corners

function draw(faces) {
  const ctx = view.getContext("2d");
  const line = Math.max(1, Math.round(Math.max(view.width, view.height) / 400));
  ctx.lineWidth = line;
  ctx.font = `${12 * line}px system-ui, sans-serif`;
  for (const face of faces) {
    const [x1, y1, x2, y2] = face.box_xyxy;
    ctx.strokeStyle = "#00dc00";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    (face.landmarks || []).forEach(([px, py], k) => {
      ctx.fillStyle = POINT_COLOURS[k % POINT_COLOURS.length];
      ctx.beginPath();
      ctx.arc(px, py, line + 1.5, 0, 2 * Math.PI);
      ctx.fill();
    });
    let text = face.score.toFixed(2);
    for (const [name, p] of Object.entries(face.attributes || {})) text += ` ${name} ${p.toFixed(2)}`;
    const tw = ctx.measureText(text).width;
    const th = 14 * line;
    const top = Math.max(0, y1 - th);
    const left = Math.max(0, Math.min(x1, view.width - tw - 4)); // the label stays inside the picture
    ctx.fillStyle = "#00dc00";
    ctx.fillRect(left, top, tw + 4, th);
    ctx.fillStyle = "#000";
    ctx.fillText(text, left + 2, top + th - 3 * line);
  }
}

// ---------- one frame: a photo or a camera image ----------

function minScore() {
  const v = parseFloat($("min-score").value);
  return Number.isFinite(v) ? Math.min(Math.max(v, 0), 1) : config.min_score;
}

async function process(source, w, h, blob, name) {
  view.width = w;
  view.height = h;
  const ctx = view.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, w, h);
  const onServer = $("server").checked;
  const start = performance.now();
  let faces;
  if (onServer) {
    faces = await detectOnServer(blob || await new Promise((ok) => view.toBlob(ok, "image/jpeg", 0.92)), minScore());
  } else {
    faces = await detectInBrowser(ctx.getImageData(0, 0, w, h).data, w, h, minScore());
  }
  const ms = performance.now() - start;
  draw(faces);
  const where = onServer ? "on the server" : "in the browser";
  say(`${faces.length} face${faces.length === 1 ? "" : "s"}, ${ms.toFixed(1)} ms ${where} (${w}x${h})`);
  window.singleshotResult = { faces, image: { width: w, height: h }, ms, mode: onServer ? "server" : "browser", name };
}

async function onPhoto(file) {
  window.singleshotResult = null;
  stopCamera();
  try {
    // pixels as the file shows them (EXIF orientation applied), as the server decodes them
    const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none" });
    await process(bitmap, bitmap.width, bitmap.height, file, file.name);
    bitmap.close();
  } catch (err) {
    say(`Could not process ${file.name}: ${err.message}`, true);
    window.singleshotResult = { faces: [], error: String(err.message), name: file.name };
  }
}

function stopCamera() {
  if (!cameraStream) return;
  cameraStream.getTracks().forEach((t) => t.stop());
  cameraStream = null;
  $("camera").textContent = "Start the camera";
}

async function cameraLoop() {
  if (!cameraStream) return;
  if (video.readyState >= 2 && video.videoWidth) {
    try {
      await process(video, video.videoWidth, video.videoHeight, null, "camera");
    } catch (err) {
      say(`Camera frame failed: ${err.message}`, true);
    }
  }
  requestAnimationFrame(cameraLoop);
}

async function toggleCamera() {
  if (cameraStream) { stopCamera(); return; }
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    say(`No camera: ${err.message}`, true);
    return;
  }
  video.srcObject = cameraStream;
  await video.play();
  $("camera").textContent = "Stop the camera";
  cameraLoop();
}

async function main() {
  try {
    config = await (await fetch("/model/config.json")).json();
    const options = { executionProviders: ["wasm"] };
    faceSession = await ort.InferenceSession.create(config.model, options);
    if (config.points) pointSession = await ort.InferenceSession.create(config.points.model, options);
    for (const [name, spec] of Object.entries(config.attributes)) {
      attributeSessions[name] = await ort.InferenceSession.create(spec.model, options);
    }
  } catch (err) {
    say(`Could not load the model: ${err.message} (is \`make web\` done?)`, true);
    return;
  }
  $("file").addEventListener("change", (e) => { if (e.target.files.length) onPhoto(e.target.files[0]); });
  $("camera").addEventListener("click", toggleCamera);
  say(`Ready: ${config.name}${config.landmarks || config.points ? " with landmarks" : ""}${Object.keys(config.attributes).length ? ", " + Object.keys(config.attributes).join(", ") : ""}. Choose a photo or start the camera.`);
  document.body.dataset.ready = "true";
}

main();
