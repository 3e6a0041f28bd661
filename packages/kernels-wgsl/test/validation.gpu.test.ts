// Every *Gpu op rejects bad input with a typed error naming the tensor, expected vs got, and creates no
// buffer and records no dispatch before throwing.
import { describe, it, expect, beforeAll } from 'vitest';
import { DTypeError, HostTensor, ShapeError, ValueError, WebMoEError } from '@webmoe/tensor';
import {
  GpuTensor,
  Recorder,
  castGpu,
  combineGpu,
  denseGroupingGpu,
  groupGpu,
  groupedDownGpu,
  groupedGateUpGpu,
  linearGpu,
  routerGpu,
  type GpuContext,
  type GroupingGpu,
} from '../src/index.js';
import { spyDevice, testGpu } from '../src/testing.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const T = 3;
const H = 8;
const I = 4;
const E = 4;
const k = 2;

let makingInputs = false;
/** An input tensor (its buffer is not counted against the op under test). */
function t(dtype: HostTensor['dtype'], shape: number[]): GpuTensor {
  makingInputs = true;
  try {
    return GpuTensor.upload(ctx!, new HostTensor(dtype, shape));
  } finally {
    makingInputs = false;
  }
}

/** Calls `fn` and checks the error: its class, its message, and that no buffer was created and nothing was dispatched. */
function rejects(fn: (rec: Recorder) => unknown, cls: new (...a: never[]) => WebMoEError, msg: RegExp): void {
  const spy = spyDevice(ctx!.device, 'createBuffer', { when: () => !makingInputs });
  const rec = new Recorder(ctx!);
  let dispatched = 0;
  const dispatch = rec.dispatch.bind(rec);
  rec.dispatch = (d) => {
    dispatched++;
    dispatch(d);
  };
  let err: unknown;
  try {
    fn(rec);
  } catch (e) {
    err = e;
  } finally {
    spy.restore();
  }
  expect(err, `expected ${cls.name} ${msg}`).toBeInstanceOf(cls);
  expect((err as Error).message).toMatch(msg);
  expect(spy.calls, `buffers created before ${cls.name}: ${(err as Error).message}`).toBe(0);
  expect(dispatched, `dispatches before ${cls.name}`).toBe(0);
  rec.submit(); // an empty submit
}

describe('GPU ops check their inputs before allocating or recording', () => {
  let x: GpuTensor, w: GpuTensor, logits: GpuTensor, idx: GpuTensor, gu: GpuTensor, dn: GpuTensor, h: GpuTensor, y: GpuTensor, wts: GpuTensor;
  let g: GroupingGpu;
  beforeAll(async () => {
    if (!ctx) return;
    x = t('float32', [T, H]);
    w = t('bfloat16', [E, H]);
    logits = t('float32', [T, E]);
    idx = GpuTensor.upload(ctx, new HostTensor('uint32', [T, k], new Uint32Array([0, 1, 2, 3, 1, 2])));
    gu = t('float32', [E, 2 * I, H]);
    dn = t('float32', [E, H, I]);
    h = t('float32', [T * k, I]);
    y = t('float32', [T * k, H]);
    wts = t('float32', [T, k]);
    const rec = new Recorder(ctx);
    g = groupGpu(ctx, rec, idx, E);
    rec.submit();
  });

  it('linearGpu: dtypes, shapes (both K named), bias', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    rejects((rec) => linearGpu(ctx!, rec, t('bfloat16', [T, H]), w), DTypeError, /linearGpu x: expected dtype float32, got bfloat16/);
    rejects((rec) => linearGpu(ctx!, rec, x, t('int8', [E, H])), DTypeError, /linearGpu w.*int8/);
    rejects((rec) => linearGpu(ctx!, rec, x, t('float32', [E, H + 1])), ShapeError, /linearGpu w \[N, K\]: expected shape \[4, 8\], got \[4, 9\]/);
    rejects((rec) => linearGpu(ctx!, rec, t('float32', [T * H]), w), ShapeError, /linearGpu x/);
    rejects((rec) => linearGpu(ctx!, rec, x, w, { bias: t('float32', [E + 1]) }), ShapeError, /linearGpu bias: expected shape \[4\], got \[5\]/);
  });

  it('routerGpu: dtype, k > E, nGroup not dividing E, numExperts vs logits, correction bias', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const p = { kind: 'softmax_topk', numExperts: E, topK: k, normTopkProb: true } as const;
    rejects((rec) => routerGpu(ctx!, rec, t('bfloat16', [T, E]), p), DTypeError, /routerGpu logits/);
    rejects((rec) => routerGpu(ctx!, rec, logits, { ...p, topK: E + 1 }), ValueError, /routerGpu topK: expected .*got 5/);
    rejects((rec) => routerGpu(ctx!, rec, logits, { ...p, numExperts: E + 2 }), ShapeError, /E = numExperts = 6.*got E = 4/);
    rejects((rec) => routerGpu(ctx!, rec, logits, { ...p, kind: 'sigmoid_grouped', nGroup: 3 }), ValueError, /routerGpu nGroup: expected .*dividing E=4, got 3/);
    rejects((rec) => routerGpu(ctx!, rec, logits, { ...p, kind: 'nope' as never }), ValueError, /routerGpu kind/);
    rejects((rec) => routerGpu(ctx!, rec, logits, { ...p, kind: 'sigmoid_grouped' }, { correctionBias: t('float32', [E + 1]) }), ShapeError, /routerGpu correctionBias: expected shape \[4\], got \[5\]/);
  });

  it('groupGpu and denseGroupingGpu: idx dtype, E', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    rejects((rec) => groupGpu(ctx!, rec, t('float32', [T, k]), E), DTypeError, /groupGpu idx: expected dtype uint32, got float32/);
    rejects((rec) => groupGpu(ctx!, rec, idx, 0), ValueError, /groupGpu E/);
    rejects((rec) => denseGroupingGpu(ctx!, rec, -1), WebMoEError as never, /T|-1/);
  });

  it('groupedGateUpGpu / groupedDownGpu: x rows vs T, weights vs E and H, activation, bias', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const act = { kind: 'silu', layout: 'concat' } as const;
    rejects((rec) => groupedGateUpGpu(ctx!, rec, t('float32', [T + 1, H]), g, { kind: 'dense', w: gu }, undefined, act), ShapeError, /groupedGateUp x: expected shape \[T=3, H\], got \[4, 8\]/);
    rejects((rec) => groupedGateUpGpu(ctx!, rec, x, g, { kind: 'dense', w: t('float32', [E, 2 * I, H + 1]) }, undefined, act), ShapeError, /groupedGateUp weights: expected shape \[E=4, 2I \(even\), H=8\], got \[4, 8, 9\]/);
    rejects((rec) => groupedGateUpGpu(ctx!, rec, x, g, { kind: 'dense', w: gu }, undefined, { kind: 'gelu' } as never), ValueError, /activation/);
    rejects((rec) => groupedGateUpGpu(ctx!, rec, x, g, { kind: 'dense', w: gu }, t('float32', [E, I]), act), ShapeError, /groupedGateUp bias: expected shape \[4, 8\], got \[4, 4\]/);
    rejects((rec) => groupedDownGpu(ctx!, rec, t('float32', [T * k, I + 1]), g, { kind: 'dense', w: dn }), ShapeError, /groupedDown weights: expected shape \[E=4, H, I=5\], got \[4, 8, 4\]/);
    rejects((rec) => groupedDownGpu(ctx!, rec, t('float16', [T * k, I]), g, { kind: 'dense', w: dn }), DTypeError, /groupedDown h/);
  });

  it('combineGpu: y rows vs T*k, weights [T, k], shared [T, H]', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    rejects((rec) => combineGpu(ctx!, rec, t('float32', [T * k + 1, H]), g, wts), ShapeError, /combineGpu y \[T\*k, H\]: expected shape \[6, 8\], got \[7, 8\]/);
    rejects((rec) => combineGpu(ctx!, rec, y, g, t('float32', [T, k + 1])), ShapeError, /combineGpu weights \[T, k\]: expected shape \[3, 2\], got \[3, 3\]/);
    rejects((rec) => combineGpu(ctx!, rec, y, g, wts, { shared: t('float32', [T, H + 1]) }), ShapeError, /combineGpu shared \[T, H\]: expected shape \[3, 8\], got \[3, 9\]/);
    rejects((rec) => combineGpu(ctx!, rec, y, g, t('bfloat16', [T, k])), DTypeError, /combineGpu weights/);
  });

  it('castGpu: an integer destination', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    rejects((rec) => castGpu(ctx!, x, 'int8' as never, { recorder: rec }), WebMoEError as never, /cast destination/);
  });

  it('a destroyed tensor is a typed error naming it, not a GPU fault', (c) => {
    if (!ctx) return c.skip('no WebGPU adapter');
    const dead = t('float32', [T, H]);
    dead.destroy();
    rejects((rec) => linearGpu(ctx!, rec, dead, w), ValueError, /linearGpu x: expected a tensor that is not destroyed, got a destroyed float32 \[3, 8\] tensor/);
    rejects((rec) => routerGpu(ctx!, rec, dead, { kind: 'raw_topk', numExperts: H, topK: 1, normTopkProb: false }), ValueError, /routerGpu logits: .*destroyed/);
    rejects((rec) => combineGpu(ctx!, rec, y, g, dead), ValueError, /combineGpu weights: .*destroyed/);
    rejects((rec) => groupedGateUpGpu(ctx!, rec, dead, g, { kind: 'dense', w: gu }, undefined, { kind: 'silu', layout: 'concat' }), ValueError, /groupedGateUp x: .*destroyed/);
    rejects((rec) => groupedDownGpu(ctx!, rec, dead, g, { kind: 'dense', w: dn }), ValueError, /groupedDown h: .*destroyed/);
    // Anything else that touches a destroyed tensor's buffer gets a typed error too.
    expect(() => dead.buffer).toThrow(/GpuTensor float32 \[3, 8\]: expected a tensor that is not destroyed, got used after destroy\(\)/);
  });
});
