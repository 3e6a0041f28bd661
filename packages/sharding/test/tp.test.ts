import { describe, it, expect } from 'vitest';
import { HostTensor } from '@webmoe/tensor';
import { rng, randomArray, relErr } from '@webmoe/kernels-wgsl/testing';
import { ShardingStrategy, cpuAllReduce, shardRange, type GateUpLayout } from '@webmoe/sharding';

/** A plain SiLU-gated MLP on the host: gu = x @ gateUp^T (+b), h = silu(g) * u, y = h @ down^T (+ bias). */
function mlp(x: Float32Array, T: number, H: number, gateUp: HostTensor, down: HostTensor, layout: GateUpLayout, guBias?: HostTensor, downBias?: HostTensor): Float32Array {
  const I2 = gateUp.shape[0];
  const I = I2 / 2;
  const gu = gateUp.toFloat32();
  const dw = down.toFloat32();
  const gb = guBias?.toFloat32();
  const db = downBias?.toFloat32();
  const y = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const h = new Float64Array(I);
    for (let i = 0; i < I; i++) {
      const gr = layout === 'concat' ? i : 2 * i;
      const ur = layout === 'concat' ? I + i : 2 * i + 1;
      let g = gb ? gb[gr] : 0;
      let u = gb ? gb[ur] : 0;
      for (let c = 0; c < H; c++) {
        g += x[t * H + c] * gu[gr * H + c];
        u += x[t * H + c] * gu[ur * H + c];
      }
      h[i] = (g / (1 + Math.exp(-g))) * u;
    }
    for (let o = 0; o < H; o++) {
      let acc = db ? db[o] : 0;
      for (let i = 0; i < I; i++) acc += h[i] * dw[o * I + i];
      y[t * H + o] = acc;
    }
  }
  return y;
}

// tensor parallelism of an MLP with the per-tensor strategies a module uses (gate_up rows and their bias as gate/up
// pairs, down columns, down bias on the leader)
const tpSplits = (n: number, unit: number, layout: 'concat' | 'interleaved') => ({
  gateUp: ShardingStrategy.gateUp(n, { unit, layout, axis: -2 }),
  gateUpBias: ShardingStrategy.gateUp(n, { unit, layout, axis: -1 }),
  down: ShardingStrategy.axiswise(-1, n, { unit }),
  downBias: ShardingStrategy.leader(n),
});

describe('tensor parallel (gateUp / axiswise / leader): the all-reduced shard outputs equal the unsharded MLP', () => {
  const r = rng(6060);
  for (const [I, n, unit, layout, dtype] of [
    [7, 3, 1, 'concat', 'float32'],
    [9, 2, 1, 'interleaved', 'bfloat16'],
    [12, 4, 1, 'concat', 'float16'],
    [10, 3, 4, 'interleaved', 'float32'],
    [3, 4, 1, 'concat', 'float32'], // a shard with no rows of I
  ] as const) {
    it(`I=${I} over ${n} (unit ${unit}, ${layout}, ${dtype}) with biases`, () => {
      const T = 5;
      const H = 11;
      const x = randomArray(r, T * H);
      const gateUp = HostTensor.fromFloat32([2 * I, H], randomArray(r, 2 * I * H, -0.5, 0.5), dtype);
      const down = HostTensor.fromFloat32([H, I], randomArray(r, H * I, -0.5, 0.5), dtype);
      const guBias = HostTensor.fromFloat32([2 * I], randomArray(r, 2 * I, -0.2, 0.2), dtype);
      const dBias = HostTensor.fromFloat32([H], randomArray(r, H, -0.2, 0.2), dtype);
      const tp = tpSplits(n, unit, layout);
      const partials: Float32Array[] = [];
      for (let i = 0; i < n; i++) {
        const gu = tp.gateUp.shard(gateUp, i);
        const dn = tp.down.shard(down, i);
        const gb = tp.gateUpBias.shard(guBias, i);
        const db = tp.downBias.shard(dBias, i);
        // gate_up rows and down columns cover the same I range
        const [s, e] = shardRange(I, i, n, unit);
        expect(dn.ranges).toEqual([[s, e]]);
        expect(gu.tensor.shape).toEqual([2 * (e - s), H]);
        expect(gu.tensor.dtype).toBe(dtype);
        const bias = db.tensor.toFloat32();
        // a shard with no I rows contributes only its (leader) bias
        partials.push(e > s ? mlp(x, T, H, gu.tensor, dn.tensor, layout, gb.tensor, db.tensor) : Float32Array.from({ length: T * H }, (_, q) => bias[q % H]));
      }
      const got = cpuAllReduce(partials)[0];
      const want = mlp(x, T, H, gateUp, down, layout, guBias, dBias);
      expect(relErr(got, want)).toBeLessThan(1e-5);
    });
  }
  it('replicating the down bias instead of leader adds it n times (the check can fail)', () => {
    const I = 6, n = 3, T = 2, H = 4;
    const x = randomArray(r, T * H);
    const gateUp = HostTensor.fromFloat32([2 * I, H], randomArray(r, 2 * I * H));
    const down = HostTensor.fromFloat32([H, I], randomArray(r, H * I));
    const bias = HostTensor.fromFloat32([H], Float32Array.of(1, -2, 3, 0.5));
    const tp = tpSplits(n, 1, 'concat');
    const run = (biasStrategy: ShardingStrategy) =>
      cpuAllReduce([0, 1, 2].map((i) => mlp(x, T, H, tp.gateUp.shard(gateUp, i).tensor, tp.down.shard(down, i).tensor, 'concat', undefined, biasStrategy.shard(bias, i).tensor)))[0];
    const want = mlp(x, T, H, gateUp, down, 'concat', undefined, bias);
    expect(relErr(run(tp.downBias), want)).toBeLessThan(1e-5);
    expect(relErr(run(ShardingStrategy.replicate(n)), want)).toBeGreaterThan(1e-2);
  });
});
