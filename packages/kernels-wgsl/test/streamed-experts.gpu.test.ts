/**
 * Expert stacks built without a host copy of the whole stack:
 * uploadExpertStackStreamed (each chunk assembled from one expert at a time)
 * gives chunks with the same shapes, dtypes and bytes as uploadExpertStack of
 * the whole host stack, for every container kind and row layout, with several
 * whole experts per chunk and with every expert cut in pieces; each expert is
 * read once even when it spans chunks. createExpertStack allocates the same
 * chunk shapes. Mismatched pieces are typed errors with nothing left allocated.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { DTypeError, HostTensor, ShapeError, ValueError } from '@webmoe/tensor';
import {
  createExpertStack,
  destroyExpertWeights,
  expertTensors,
  planExpertChunks,
  quantizeExperts,
  uploadExpertStack,
  uploadExpertStackStreamed,
  type ExpertQuantFormat,
  type ExpertRowLayout,
  type ExpertStackGpu,
  type ExpertWeightsHost,
  type GpuContext,
} from '@webmoe/kernels-wgsl';
import { testGpu, rng, randomArray } from '@webmoe/kernels-wgsl/testing';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

const E = 5;
const I = 256; // outputs per expert of gate_up (two 128-row fp8 blocks)
const H = 96;

type Case = { name: string; fmt?: ExpertQuantFormat; dtype?: 'float32' | 'bfloat16' };
const CASES: Case[] = [
  { name: 'dense f32', dtype: 'float32' },
  { name: 'dense bf16', dtype: 'bfloat16' },
  { name: 'fp8 128x128', fmt: { kind: 'fp8_block', dtype: 'float8_e4m3fn', block: [128, 128] } },
  { name: 'mxfp4', fmt: { kind: 'mxfp4' } },
  { name: 'int4 zero points', fmt: { kind: 'int_block', bits: 4, blockSize: 32, scaleDtype: 'float16', zeroPoint: true } },
  { name: 'int8 f32 scales', fmt: { kind: 'int_block', bits: 8, blockSize: 32, scaleDtype: 'float32' } },
];

function hostStack(c: Case, rows: number, cols: number, seed: number): ExpertWeightsHost {
  const w = randomArray(rng(seed), E * rows * cols, 0.5);
  if (c.fmt) return quantizeExperts(w, E, rows, cols, c.fmt);
  const t = HostTensor.fromFloat32([E, rows, cols], w);
  return { kind: 'dense', w: c.dtype === 'float32' ? t : t.cast(c.dtype!) };
}

/** Expert e of a host container as a container of one expert. */
function pieceOf(w: ExpertWeightsHost, e: number): ExpertWeightsHost {
  const out: Record<string, unknown> = { ...w };
  for (const [k, v] of Object.entries(w)) {
    if (!(v instanceof HostTensor)) continue;
    const per = v.size / v.shape[0];
    out[k] = new HostTensor(v.dtype, [1, ...v.shape.slice(1)], v.data.slice(e * per, (e + 1) * per) as never);
  }
  return out as unknown as ExpertWeightsHost;
}

async function bytesOf(w: ExpertStackGpu): Promise<{ dtype: string; shape: string; bytes: Uint8Array }[]> {
  return Promise.all(
    expertTensors(w).map(async (t) => {
      const h = await t.download();
      return { dtype: t.dtype, shape: t.shape.join(), bytes: new Uint8Array(h.data.buffer, h.data.byteOffset, h.data.byteLength).slice() };
    }),
  );
}

describe('uploadExpertStackStreamed: the chunks of uploadExpertStack, one expert at a time', () => {
  for (const c of CASES) {
    for (const [layout, rows, cols] of [['concat', 2 * I, H], ['interleaved', 2 * I, H], ['rows', H, I]] as [ExpertRowLayout, number, number][]) {
      it(`${c.name} ${layout}`, async (t) => {
        if (!ctx) return t.skip('no WebGPU adapter');
        const cx = ctx;
        const host = hostStack(c, rows, cols, rows * 7 + cols);
        const expertBytes = Math.max(...Object.values(host).filter((v): v is HostTensor => v instanceof HostTensor).map((v) => v.byteLength / E));
        // several whole experts per chunk; every expert in pieces (fp8: only gate_up concat, whose I holds two
        // 128-row blocks; interleaved pairs and down's 96 rows cannot be cut without cutting a block)
        const splits = c.fmt?.kind !== 'fp8_block' || layout === 'concat';
        const limits = [Math.ceil((2.5 * expertBytes) / 4) * 4, ...(splits ? [Math.ceil((0.6 * expertBytes) / 4) * 4] : [])];
        for (const max of limits) {
          const ranges = planExpertChunks(host, layout, max);
          expect(ranges.length).toBeGreaterThan(1);
          if (max < expertBytes) expect(ranges.length, 'every expert in pieces').toBeGreaterThan(E);
          const want = uploadExpertStack(cx, host, { layout, maxBindingBytes: max });
          const reads: number[] = [];
          const got = await uploadExpertStackStreamed(cx, host, { layout, maxBindingBytes: max }, (e) => {
            reads.push(e);
            return { w: pieceOf(host, e) };
          });
          try {
            expect(reads, 'each expert read once, in order').toEqual([0, 1, 2, 3, 4]);
            expect(got.weights.kind).toBe('chunked');
            if (got.weights.kind !== 'chunked' || want.weights.kind !== 'chunked') return;
            expect(got.weights.chunks.map(({ e0, experts, o0, outputs }) => ({ e0, experts, o0, outputs }))).toEqual(ranges);
            const [a, b] = [await bytesOf(got.weights), await bytesOf(want.weights)];
            expect(a.length).toBe(b.length);
            a.forEach((x, i) => {
              expect([x.dtype, x.shape]).toEqual([b[i].dtype, b[i].shape]);
              expect(Buffer.compare(x.bytes, b[i].bytes), `tensor ${i} (${x.dtype} [${x.shape}]) bytes`).toBe(0);
            });
            // createExpertStack: the same chunk shapes and dtypes, zero-filled
            const empty = createExpertStack(cx, host, { layout, maxBindingBytes: max });
            try {
              const z = await bytesOf(empty.weights);
              expect(z.map((x) => [x.dtype, x.shape])).toEqual(b.map((x) => [x.dtype, x.shape]));
              expect(z.every((x) => x.bytes.every((v) => v === 0))).toBe(true);
            } finally {
              destroyExpertWeights(empty.weights);
            }
          } finally {
            destroyExpertWeights(got.weights);
            destroyExpertWeights(want.weights);
          }
        }
      }, 120_000);
    }
  }

  it('a stack that fits one binding is one plain container, its bias beside it', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const host = hostStack(CASES[1], 2 * I, H, 3);
    const bias = HostTensor.fromFloat32([E, 2 * I], randomArray(rng(4), E * 2 * I, 1));
    const s = await uploadExpertStackStreamed(ctx, host, { layout: 'concat', biasDtype: 'float32' }, (e) => ({ w: pieceOf(host, e), bias: new HostTensor('float32', [1, 2 * I], bias.data.slice(e * 2 * I, (e + 1) * 2 * I) as Float32Array) }));
    try {
      expect(s.weights.kind).toBe('dense');
      expect(Array.from((await s.bias!.download()).data as Float32Array)).toEqual(Array.from(bias.data as Float32Array));
    } finally {
      destroyExpertWeights(s.weights);
      s.bias?.destroy();
    }
  });

  it('biases split with their rows: the bytes of uploadExpertStack with the same bias', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const cx = ctx;
    const host = hostStack(CASES[3], 2 * I, H, 5);
    const bias = HostTensor.fromFloat32([E, 2 * I], randomArray(rng(6), E * 2 * I, 1)).cast('bfloat16');
    const max = 2048;
    const want = uploadExpertStack(cx, host, { layout: 'interleaved', bias, maxBindingBytes: max });
    const got = await uploadExpertStackStreamed(cx, host, { layout: 'interleaved', biasDtype: 'bfloat16', maxBindingBytes: max }, (e) => ({ w: pieceOf(host, e), bias: new HostTensor('bfloat16', [1, 2 * I], bias.data.slice(e * 2 * I, (e + 1) * 2 * I) as Uint16Array) }));
    try {
      if (got.weights.kind !== 'chunked' || want.weights.kind !== 'chunked') throw new Error('expected chunked stacks');
      expect(got.weights.chunks.length).toBeGreaterThan(E);
      for (let i = 0; i < want.weights.chunks.length; i++) {
        const [a, b] = [await got.weights.chunks[i].bias!.download(), await want.weights.chunks[i].bias!.download()];
        expect(Array.from(a.data as Uint16Array)).toEqual(Array.from(b.data as Uint16Array));
      }
    } finally {
      destroyExpertWeights(got.weights);
      destroyExpertWeights(want.weights);
    }
  });

  it('a piece of the wrong kind, shape or dtype is a typed error naming the expert', async (t) => {
    if (!ctx) return t.skip('no WebGPU adapter');
    const host = hostStack(CASES[1], 2 * I, H, 7);
    const max = 4 * 2 * I * H; // two experts per chunk
    const bad = async (piece: (e: number) => ExpertWeightsHost) => uploadExpertStackStreamed(ctx!, host, { layout: 'concat', maxBindingBytes: max }, (e) => ({ w: piece(e) }));
    await expect(bad((e) => (e === 3 ? hostStack(CASES[2], 2 * I, H, 1) : pieceOf(host, e)))).rejects.toThrow(/expert 3 kind/);
    await expect(bad((e) => (e === 2 ? pieceOf(hostStack(CASES[1], 2 * I, H + 32, 1), 0) : pieceOf(host, e)))).rejects.toThrow(ShapeError);
    await expect(bad((e) => (e === 4 ? pieceOf(hostStack(CASES[0], 2 * I, H, 1), 0) : pieceOf(host, e)))).rejects.toThrow(DTypeError);
    await expect(uploadExpertStackStreamed(ctx, host, { layout: 'concat', maxBindingBytes: max }, (e) => ({ w: pieceOf(host, e), bias: new HostTensor('float32', [1, 2 * I], new Float32Array(2 * I)) }))).rejects.toThrow(ValueError);
  });
});
