// src/check-worker.ts
import { parentPort } from "node:worker_threads";

// src/stored.ts
var f32b = new Float32Array(1);
var u32b = new Uint32Array(f32b.buffer);
function f16ToNumber(h) {
  const s = h & 32768 ? -1 : 1;
  const e = h >> 10 & 31;
  const m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function e4m3ToNumber(b) {
  const s = b & 128 ? -1 : 1;
  const e = b >> 3 & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}
var E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
var BYTES = { float32: 4, bfloat16: 2, float16: 2, float8_e4m3fn: 1, uint8: 1 };
var f16Table;
var e4m3Table;
function tables() {
  f16Table ??= Float64Array.from({ length: 65536 }, (_, h) => f16ToNumber(h));
  e4m3Table ??= Float64Array.from({ length: 256 }, (_, b) => e4m3ToNumber(b));
  return { f16: f16Table, e4m3: e4m3Table };
}
function aligned(b, bytes) {
  return b.byteOffset % bytes === 0 ? b : b.slice();
}
var bf16Bits = new Uint32Array(0);
var bf16Vals = new Float32Array(0);
function decodeDense(dtype, b, n, out, outOff = 0) {
  if (b.byteLength < n * BYTES[dtype]) throw new Error(`reference: ${b.byteLength} bytes for ${n} ${dtype} values`);
  switch (dtype) {
    case "float32": {
      const a = aligned(b, 4);
      const v = new Float32Array(a.buffer, a.byteOffset, n);
      for (let i = 0; i < n; i++) out[outOff + i] = v[i];
      return;
    }
    case "bfloat16": {
      const a = aligned(b, 2);
      const h = new Uint16Array(a.buffer, a.byteOffset, n);
      if (bf16Bits.length < n) {
        bf16Bits = new Uint32Array(n);
        bf16Vals = new Float32Array(bf16Bits.buffer);
      }
      for (let i = 0; i < n; i++) bf16Bits[i] = h[i] << 16;
      for (let i = 0; i < n; i++) out[outOff + i] = bf16Vals[i];
      return;
    }
    case "float16": {
      const a = aligned(b, 2);
      const h = new Uint16Array(a.buffer, a.byteOffset, n);
      const t = tables().f16;
      for (let i = 0; i < n; i++) out[outOff + i] = t[h[i]];
      return;
    }
    case "float8_e4m3fn": {
      const t = tables().e4m3;
      for (let i = 0; i < n; i++) out[outOff + i] = t[b[i]];
      return;
    }
    case "uint8":
      for (let i = 0; i < n; i++) out[outOff + i] = b[i];
      return;
  }
}
function expertMatrix(x) {
  const { rows, cols } = x;
  switch (x.kind) {
    case "dense": {
      const eb = BYTES[x.dtype];
      return { rows, cols, row: (i, out) => decodeDense(x.dtype, x.b.subarray(i * cols * eb, (i + 1) * cols * eb), cols, out) };
    }
    case "fp8_block": {
      const [bm, bn] = x.block;
      const sc = Math.ceil(cols / bn);
      const { q, s } = x;
      return {
        rows,
        cols,
        row: (i, out) => {
          const t = tables().e4m3;
          const s0 = Math.floor(i / bm) * sc;
          for (let c = 0; c < cols; c++) out[c] = t[q[i * cols + c]] * s[s0 + Math.floor(c / bn)];
        }
      };
    }
    case "int_block": {
      const { bits, blockSize, q, s } = x;
      const rowBytes = cols * bits / 8;
      const nb = Math.ceil(cols / blockSize);
      const zp = 2 ** (bits - 1);
      return {
        rows,
        cols,
        row: (i, out) => {
          for (let c = 0; c < cols; c++) {
            const byte = q[i * rowBytes + (bits === 8 ? c : c >> 1)];
            const code = bits === 8 ? byte : c & 1 ? byte >> 4 : byte & 15;
            out[c] = (code - zp) * s[i * nb + Math.floor(c / blockSize)];
          }
        }
      };
    }
    case "mxfp4": {
      const nb = cols / 32;
      const { blocks, scales } = x;
      return {
        rows,
        cols,
        row: (i, out) => {
          for (let c = 0; c < cols; c++) {
            const byte = blocks[i * nb * 16 + (c >> 1)];
            out[c] = E2M1[c & 1 ? byte >> 4 : byte & 15] * 2 ** (scales[i * nb + (c >> 5)] - 127);
          }
        }
      };
    }
  }
}

// src/reference.ts
var sigmoid = (v) => 1 / (1 + Math.exp(-v));
function activation64(a, g, u) {
  if (a.kind === "silu") return g * sigmoid(g) * u;
  const L = a.limit ?? 7;
  if (a.kind === "swiglu_limit") return Math.min(g * sigmoid(g), L) * Math.min(L, Math.max(-L, u));
  const gg = Math.min(g, L);
  const uu = Math.min(L, Math.max(-L, u));
  return (uu + 1) * gg * sigmoid((a.alpha ?? 1.702) * gg);
}
function guRows(a, I, i) {
  return a.layout === "interleaved" ? [2 * i, 2 * i + 1] : [i, I + i];
}
function expertForward(gu, dn, act, xs, I, H, guBias, dnBias) {
  const row = new Float64Array(Math.max(gu.cols, dn.cols));
  const gus = xs.map(() => new Float64Array(2 * I));
  for (let r = 0; r < 2 * I; r++) {
    gu.row(r, row);
    for (let j = 0; j < xs.length; j++) {
      const x = xs[j];
      let acc = guBias ? guBias[r] : 0;
      for (let c = 0; c < H; c++) acc += x[c] * row[c];
      gus[j][r] = acc;
    }
  }
  const hs = gus.map((g) => {
    const h = new Float64Array(I);
    for (let i = 0; i < I; i++) {
      const [gr, ur] = guRows(act, I, i);
      h[i] = activation64(act, g[gr], g[ur]);
    }
    return h;
  });
  const ys = xs.map(() => new Float64Array(H));
  for (let r = 0; r < H; r++) {
    dn.row(r, row);
    for (let j = 0; j < hs.length; j++) {
      let acc = dnBias ? dnBias[r] : 0;
      for (let i = 0; i < I; i++) acc += hs[j][i] * row[i];
      ys[j][r] = acc;
    }
  }
  return ys;
}
function runExpertJob(j) {
  return expertForward(expertMatrix(j.gu), expertMatrix(j.dn), j.act, j.xs, j.I, j.H, j.guBias, j.dnBias);
}

// src/check-worker.ts
if (!parentPort) throw new Error("check-worker.js runs as a worker thread (check-pool.ts)");
var port = parentPort;
port.on("message", (job) => {
  try {
    const ys = runExpertJob(job);
    port.postMessage({ ys }, ys.map((y) => y.buffer));
  } catch (e) {
    port.postMessage({ error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
