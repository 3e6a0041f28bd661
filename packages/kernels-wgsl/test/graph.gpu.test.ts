import { describe, it, expect, beforeAll } from 'vitest';
import { HostTensor, ShapeError } from '@webmoe/tensor';
import { BufferPool, ForwardGraphs, GpuTensor, GraphScratch, Recorder, castGpu, castRef, defineKernel, graphScratchBytes, trimGraphScratch, type GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu, gpuChecked, rng, randomArray } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

describe('GpuGraph (captured recording, replayed)', () => {
  it('replays on new input data and gives what a fresh recording gives', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(7);
    const n = 1001;
    await gpuChecked(c, async () => {
      const x = GpuTensor.empty(c, 'float32', [n]);
      const rec = new Recorder(c, { capture: true });
      const mid = castGpu(c, x, 'bfloat16', { recorder: rec });
      const y = castGpu(c, mid, 'float32', { recorder: rec });
      rec.submit();
      const graph = rec.toGraph();
      expect(graph.dispatchCount).toBe(2);
      for (let rep = 0; rep < 3; rep++) {
        const vals = randomArray(r, n, -50, 50);
        c.writeBuffer(x.buffer, 0, vals);
        const ns = await graph.replay({ timestamps: true });
        if (c.features.timestampQuery) expect(ns).toBeGreaterThanOrEqual(0);
        const got = (await y.download()).toFloat32();
        const want = castRef(castRef(HostTensor.fromFloat32([n], vals), 'bfloat16'), 'float32').toFloat32();
        expect(got).toEqual(want);
      }
      graph.destroy();
      for (const b of [x, mid, y]) b.destroy();
    });
  });
  it('replays in pieces of growing size (pieces): the same result, one submit per piece', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(11);
    const n = 517;
    await gpuChecked(c, async () => {
      const x = GpuTensor.empty(c, 'float32', [n]);
      const rec = new Recorder(c, { capture: true });
      // 13 dependent dispatches: f32 -> bf16 -> f32 -> ... (every one reads the previous one's output)
      const made: GpuTensor[] = [x];
      for (let i = 0; i < 13; i++) made.push(castGpu(c, made[i], i % 2 === 0 ? 'bfloat16' : 'float32', { recorder: rec }));
      rec.submit();
      const graph = rec.toGraph();
      expect(graph.dispatchCount).toBe(13);
      const submit = c.submit.bind(c);
      let submits = 0;
      c.submit = (b: GPUCommandBuffer[]) => (submits++, submit(b));
      try {
        for (const [pieces, want] of [
          [{ first: 2, max: 4 }, 4], // 2 + 4 + 4 + 3
          [{ first: 1, max: 64 }, 4], // 1 + 2 + 4 + 6
          [{ first: 13, max: 13 }, 1],
          [undefined, 1],
        ] as const) {
          const vals = randomArray(r, n, -50, 50);
          c.writeBuffer(x.buffer, 0, vals);
          const last = made[13];
          c.writeBuffer(last.buffer, 0, new Uint8Array(last.byteLength)); // a piece left out would leave zeros or stale values
          submits = 0;
          await graph.replay({ pieces });
          expect(submits, JSON.stringify(pieces)).toBe(want);
          const got = (await last.download()).toFloat32(); // bf16 (13th cast: index 12, even) -> last is bf16
          const wantVals = castRef(HostTensor.fromFloat32([n], vals), 'bfloat16').toFloat32();
          expect(got).toEqual(wantVals);
        }
      } finally {
        c.submit = submit;
      }
      graph.destroy();
      for (const b of made) b.destroy();
    });
  });
  it('refuses toGraph on a recorder that did not capture', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const rec = new Recorder(ctx);
    rec.submit();
    expect(() => rec.toGraph()).toThrow(/capture/);
  });
});

describe('ForwardGraphs (graph per key, output pool) and BufferPool.close', () => {
  it('captures once per key, replays on new inputs like a fresh recording, evicts the least recently used, writes caller outputs', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(3);
    await gpuChecked(c, async () => {
      const graphs = new ForwardGraphs(c, 'test', { maxGraphs: 2 });
      let records = 0;
      // f32 -> bf16 -> f32 rounding, as a two-dispatch "forward"
      const fwd = (rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[]) => {
        records++;
        const mid = castGpu(c, x, 'bfloat16', { recorder: rec });
        scratch.push(mid);
        return castGpu(c, mid, 'float32', { recorder: rec });
      };
      const want = (v: Float32Array) => castRef(castRef(HostTensor.fromFloat32([v.length], v), 'bfloat16'), 'float32').toFloat32();
      for (const [key, n, captures] of [['a', 37, 1], ['a', 37, 0], ['b', 8, 1], ['a', 37, 0], ['c', 5, 1], ['b', 8, 1]] as const) {
        const vals = randomArray(r, n, -50, 50);
        const x = GpuTensor.upload(c, HostTensor.fromFloat32([n], vals));
        const before = records;
        const y = graphs.run(key, x, [n], fwd);
        expect(records - before, `${key}: captured`).toBe(captures);
        expect((await y.download()).toFloat32(), key).toEqual(want(vals));
        // a caller-provided output gets the same values; a wrong one is refused before anything runs
        const out = GpuTensor.empty(c, 'float32', [n]);
        expect(graphs.run(key, x, [n], fwd, out)).toBe(out);
        expect((await out.download()).toFloat32()).toEqual(want(vals));
        const bad = GpuTensor.empty(c, 'float32', [n + 1]);
        expect(() => graphs.run(key, x, [n], fwd, bad)).toThrow(ShapeError);
        for (const b of [x, y, out, bad]) b.destroy();
      }
      expect(graphs.size).toBe(2); // 'c' and 'b' kept, 'a' evicted
      graphs.destroy();
    });
  });
  it('GraphScratch: one capture never takes a buffer twice, the n-th of a size is every capture\'s n-th, idle after the last graph that binds it (taken again, or trimmed)', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    trimGraphScratch(c);
    const base = graphScratchBytes(c).bound;
    expect(graphScratchBytes(c).idle).toBe(0);
    const s1 = new GraphScratch(c);
    const a = s1.acquire(1000);
    const b = s1.acquire(1000);
    const small = s1.acquire(16);
    expect(a).not.toBe(b);
    s1.release(a); // stays the capture's: the next acquisition still gets another buffer
    const d = s1.acquire(1000);
    expect(new Set([a, b, d]).size).toBe(3);
    const grown = graphScratchBytes(c).bound - base;
    expect(grown).toBe(3 * BufferPool.bucket(1000) + BufferPool.bucket(16));
    const s2 = new GraphScratch(c);
    expect(s2.acquire(1000)).toBe(a);
    expect(s2.acquire(1000)).toBe(b);
    expect(s2.acquire(16)).toBe(small);
    expect(graphScratchBytes(c).bound - base, 'the second capture shares the first one\'s buffers').toBe(grown);
    s1.end();
    expect(graphScratchBytes(c), 'only d is bound by no capture any more: idle').toEqual({ bound: base + grown - BufferPool.bucket(1000), idle: BufferPool.bucket(1000) });
    s2.end();
    expect(graphScratchBytes(c)).toEqual({ bound: base, idle: grown });
    // a later capture takes the idle buffers again (no new ones), in the same order
    const s3 = new GraphScratch(c);
    expect([s3.acquire(1000), s3.acquire(1000), s3.acquire(1000), s3.acquire(16)]).toEqual([a, b, d, small]);
    expect(graphScratchBytes(c)).toEqual({ bound: base + grown, idle: 0 });
    s3.end();
    trimGraphScratch(c);
    expect(graphScratchBytes(c)).toEqual({ bound: base, idle: 0 });
  });
  it('graphs of two forwards share their scratch: interleaved replays give fresh recordings\' results, the arena goes when the graphs go', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(5);
    const n = 777;
    await gpuChecked(c, async () => {
      trimGraphScratch(c);
      const base = graphScratchBytes(c).bound;
      // two different "layers": f32 -> bf16 -> f32 and f32 -> f16 -> f32, their intermediates on the transient scratch
      const via = (dt: 'bfloat16' | 'float16') => (rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[], transient: BufferPool) => {
        const mid = castGpu(c, x, dt, { recorder: rec, pool: transient });
        scratch.push(mid);
        return castGpu(c, mid, 'float32', { recorder: rec, pool: transient });
      };
      const want = (v: Float32Array, dt: 'bfloat16' | 'float16') => castRef(castRef(HostTensor.fromFloat32([v.length], v), dt), 'float32').toFloat32();
      const ga = new ForwardGraphs(c, 'a');
      const gb = new ForwardGraphs(c, 'b');
      const xa = GpuTensor.upload(c, HostTensor.fromFloat32([n], randomArray(r, n, -50, 50)));
      ga.run('n', xa, [n], via('bfloat16')).destroy();
      const afterA = graphScratchBytes(c).bound;
      expect(afterA).toBeGreaterThan(base);
      gb.run('n', xa, [n], via('float16')).destroy();
      expect(graphScratchBytes(c).bound, 'the second graph binds the first one\'s scratch').toBe(afterA);
      for (let rep = 0; rep < 3; rep++) {
        const va = randomArray(r, n, -50, 50);
        const vb = randomArray(r, n, -50, 50);
        const x1 = GpuTensor.upload(c, HostTensor.fromFloat32([n], va));
        const x2 = GpuTensor.upload(c, HostTensor.fromFloat32([n], vb));
        const y1 = ga.run('n', x1, [n], via('bfloat16'));
        const y2 = gb.run('n', x2, [n], via('float16'));
        const y3 = ga.run('n', y2, [n], via('bfloat16')); // b's output into a: a chain of layers
        expect((await y1.download()).toFloat32()).toEqual(want(va, 'bfloat16'));
        expect((await y2.download()).toFloat32()).toEqual(want(vb, 'float16'));
        expect((await y3.download()).toFloat32()).toEqual(want(want(vb, 'float16'), 'bfloat16'));
        for (const b of [x1, x2, y1, y2, y3]) b.destroy();
      }
      ga.destroy();
      expect(graphScratchBytes(c).bound, 'b still binds the shared scratch').toBe(afterA);
      gb.destroy();
      expect(graphScratchBytes(c).bound).toBe(base);
      trimGraphScratch(c);
      expect(graphScratchBytes(c).idle).toBe(0);
      xa.destroy();
    });
  });
  it('captureAt 2: a key\'s first call is recorded afresh (no graph, scratch back to the shared cache), the second captures, the third replays; each gives the reference', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(13);
    const n = 301;
    await gpuChecked(c, async () => {
      const graphs = new ForwardGraphs(c, 'test', { captureAt: 2 });
      let records = 0;
      let captures = 0;
      const fwd = (rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[], pool: BufferPool) => {
        records++;
        if (pool instanceof GraphScratch) captures++;
        const mid = castGpu(c, x, 'bfloat16', { recorder: rec, pool });
        scratch.push(mid);
        return castGpu(c, mid, 'float32', { recorder: rec, pool });
      };
      const want = (v: Float32Array) => castRef(castRef(HostTensor.fromFloat32([v.length], v), 'bfloat16'), 'float32').toFloat32();
      for (const [call, recorded, captured, size] of [[1, 1, 0, 0], [2, 2, 1, 1], [3, 2, 1, 1]] as const) {
        const vals = randomArray(r, n, -50, 50);
        const x = GpuTensor.upload(c, HostTensor.fromFloat32([n], vals));
        // the first call writes a caller's output too
        const out = call === 1 ? GpuTensor.empty(c, 'float32', [n]) : undefined;
        const y = graphs.run('k', x, [n], fwd, out);
        if (out) expect(y).toBe(out);
        expect([records, captures, graphs.size], `call ${call}: recordings, captures, graphs`).toEqual([recorded, captured, size]);
        expect((await y.download()).toFloat32(), `call ${call}`).toEqual(want(vals));
        for (const b of [x, y]) b.destroy();
      }
      // clear() forgets the keys seen: the next call records afresh again
      graphs.clear();
      const x = GpuTensor.upload(c, HostTensor.fromFloat32([n], randomArray(r, n, -50, 50)));
      graphs.run('k', x, [n], fwd).destroy();
      expect([records, captures, graphs.size]).toEqual([3, 1, 0]);
      x.destroy();
      graphs.destroy();
    });
  });
  it('BufferPool.close frees the cached buffers and destroys later releases instead of caching them', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const pool = new BufferPool(ctx);
    const a = pool.tensor('float32', [64]);
    const b = pool.tensor('float32', [64]);
    b.destroy();
    expect(pool.freeByteCount).toBe(256);
    pool.close();
    expect(pool.freeByteCount).toBe(0);
    a.destroy();
    expect(pool.freeByteCount).toBe(0);
    expect(pool.liveCount).toBe(0);
  });
});

/** Doubles X in place (a forward that writes its input). */
const doubleInPlace = defineKernel<Record<string, never>>(
  'test_double_in_place',
  () => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < arrayLength(&X)) { X[g.x] = 2.0 * X[g.x]; }
}
`,
  { signature: () => ({ bindings: [{ name: 'X', type: 'array<f32>', access: 'read_write' }] }) },
);

/** Counts copyBufferToBuffer calls on the encoders `c.device` makes while `f` runs. */
async function countCopies<T>(c: GpuContext, f: () => Promise<T>): Promise<{ copies: number; result: T }> {
  const dev = c.device;
  const make = dev.createCommandEncoder;
  let copies = 0;
  dev.createCommandEncoder = (d?: GPUCommandEncoderDescriptor) => {
    const enc = make.call(dev, d);
    const copy = enc.copyBufferToBuffer;
    enc.copyBufferToBuffer = ((...a: Parameters<GPUCommandEncoder['copyBufferToBuffer']>) => (copies++, copy.apply(enc, a))) as GPUCommandEncoder['copyBufferToBuffer'];
    return enc;
  };
  try {
    const result = await f();
    return { copies, result };
  } finally {
    dev.createCommandEncoder = make;
  }
}

describe('ForwardGraphs on the caller buffers (GpuGraph.rebound)', () => {
  const roundTrip = (c: GpuContext) => (rec: Recorder, x: GpuTensor, scratch: { destroy(): void }[]) => {
    const mid = castGpu(c, x, 'bfloat16', { recorder: rec });
    scratch.push(mid);
    return castGpu(c, mid, 'float32', { recorder: rec });
  };
  const want = (v: Float32Array) => castRef(castRef(HostTensor.fromFloat32([v.length], v), 'bfloat16'), 'float32').toFloat32();

  it('replays on the input and output buffers themselves (no copies), for each pair of buffers, like a fresh recording', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(21);
    const n = 300;
    await gpuChecked(c, async () => {
      const graphs = new ForwardGraphs(c, 'test');
      const fwd = roundTrip(c);
      const x0 = GpuTensor.upload(c, HostTensor.fromFloat32([n], randomArray(r, n, -50, 50)));
      graphs.run('k', x0, [n], fwd).destroy(); // the capture
      // a chain over pooled outputs (each input the previous output) and caller outputs: several buffer pairs, some repeated
      let h = x0;
      for (let i = 0; i < 12; i++) {
        const vals = randomArray(r, n, -50, 50);
        c.writeBuffer(h.buffer, 0, vals);
        const out = i % 4 === 3 ? GpuTensor.empty(c, 'float32', [n]) : undefined;
        const { copies, result: y } = await countCopies(c, async () => graphs.run('k', h, [n], fwd, out));
        expect(copies, `replay ${i}`).toBe(0);
        expect((await y.download()).toFloat32(), `replay ${i}`).toEqual(want(vals));
        expect((await h.download()).toFloat32(), `replay ${i}: the input is left as it was`).toEqual(vals);
        if (h !== x0) h.destroy();
        h = y;
      }
      h.destroy();
      x0.destroy();
      graphs.destroy();
    });
  });

  it('copies instead where the buffers cannot stand in: output = input, or a graph that writes its input', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(22);
    const n = 200;
    await gpuChecked(c, async () => {
      // out === x: the result lands in x (copied in, then out)
      const graphs = new ForwardGraphs(c, 'test');
      const fwd = roundTrip(c);
      const x = GpuTensor.upload(c, HostTensor.fromFloat32([n], randomArray(r, n, -50, 50)));
      graphs.run('k', x, [n], fwd).destroy();
      const vals = randomArray(r, n, -50, 50);
      c.writeBuffer(x.buffer, 0, vals);
      const { copies } = await countCopies(c, async () => graphs.run('k', x, [n], fwd, x));
      expect(copies).toBe(2);
      expect((await x.download()).toFloat32()).toEqual(want(vals));
      graphs.destroy();
      // a forward that doubles its input in place: replays work on the graph's copy, the caller's input stays
      const inPlace = new ForwardGraphs(c, 'test.inplace');
      const fwd2 = (rec: Recorder, xi: GpuTensor, scratch: { destroy(): void }[]) => {
        rec.dispatch({ kernel: doubleInPlace, variant: {}, bind: { X: xi.buffer }, workgroups: [Math.ceil(n / 64)] });
        return fwd(rec, xi, scratch);
      };
      inPlace.run('k', x, [n], fwd2).destroy();
      for (let i = 0; i < 2; i++) {
        const v = randomArray(r, n, -50, 50);
        c.writeBuffer(x.buffer, 0, v);
        const { copies: cp, result: y } = await countCopies(c, async () => inPlace.run('k', x, [n], fwd2));
        expect(cp).toBe(2);
        expect((await x.download()).toFloat32(), 'the input is left as it was').toEqual(v);
        expect((await y.download()).toFloat32()).toEqual(want(v.map((a) => 2 * a)));
        y.destroy();
      }
      inPlace.destroy();
      x.destroy();
    });
  });
});

describe('deferred graph replays (the context encoder, replay({ defer: true }))', () => {
  it('a chain of replays in one task is one submit after the task; writes, reads and destroys after a replay keep issue order', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const c = ctx;
    const r = rng(11);
    const n = 517;
    await gpuChecked(c, async () => {
      const x = GpuTensor.empty(c, 'float32', [n]);
      const rec = new Recorder(c, { capture: true });
      const y = castGpu(c, castGpu(c, x, 'bfloat16', { recorder: rec }), 'float32', { recorder: rec });
      rec.submit();
      const graph = rec.toGraph();
      const q = c.device.queue;
      const submit = q.submit.bind(q);
      let submits = 0;
      q.submit = (cbs: Iterable<GPUCommandBuffer>) => {
        submits++;
        return submit(cbs);
      };
      const want = (v: Float32Array) => castRef(castRef(HostTensor.fromFloat32([n], v), 'bfloat16'), 'float32').toFloat32();
      try {
        // five replays issued in one go: nothing submitted until the task ends, then one submit
        const a = randomArray(r, n, -50, 50);
        c.writeBuffer(x.buffer, 0, a);
        for (let i = 0; i < 5; i++) void graph.replay({ defer: true });
        expect(submits).toBe(0);
        await afterScheduledFlush();
        expect(submits).toBe(1);
        expect((await y.download()).toFloat32()).toEqual(want(a));
        // a write issued after a pending replay lands after it: the replay read the old input
        const b = randomArray(r, n, -50, 50);
        const keep = GpuTensor.empty(c, 'float32', [n]);
        void graph.replay({ defer: true });
        const enc = c.device.createCommandEncoder();
        enc.copyBufferToBuffer(y.buffer, 0, keep.buffer, 0, n * 4);
        c.submit([enc.finish()]); // after the pending replay
        c.writeBuffer(x.buffer, 0, b); // after both
        expect((await keep.download()).toFloat32()).toEqual(want(a));
        void graph.replay({ defer: true });
        expect((await y.download()).toFloat32()).toEqual(want(b)); // the read flushes the pending replay first
        // a tensor read by a pending copy may be destroyed at once: the deferred work is submitted before
        const src = GpuTensor.upload(c, HostTensor.fromFloat32([n], b));
        void graph.replay({ defer: true });
        c.deferredEncoder().copyBufferToBuffer(src.buffer, 0, keep.buffer, 0, n * 4);
        src.destroy();
        expect((await keep.download()).toFloat32()).toEqual(b);
        keep.destroy();
      } finally {
        q.submit = submit;
      }
      graph.destroy();
      x.destroy();
      y.destroy();
    });
  });
});

/**
 * Resolves after the macrotask the context queued for its flush: the same
 * queue (setImmediate in Node, a MessageChannel elsewhere) runs its tasks
 * first in, first out. A `setTimeout(0)` may run before a pending
 * setImmediate in Node, which made this test flaky.
 */
function afterScheduledFlush(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return new Promise((res) => g.setImmediate!(res));
  return new Promise((res) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      res();
    };
    ch.port2.postMessage(undefined);
  });
}
