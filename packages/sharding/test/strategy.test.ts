import { describe, it, expect } from 'vitest';
import { HostTensor, ALL_DTYPES, DTYPES, type DType, type HostArray } from '@webmoe/tensor';
import { ShardingStrategy, ShardingError, shardRange, shardSizes, concatAxis, takeRanges } from '@webmoe/sharding';
import { rng } from '@webmoe/kernels-wgsl/testing';

/** A tensor whose element at flat index f holds f (as raw storage), in any dtype. */
function iota(shape: number[], dtype: DType = 'float32'): HostTensor {
  const t = new HostTensor(dtype, shape);
  for (let f = 0; f < t.size; f++) (t.data as HostArray)[f] = dtype === 'float32' ? f : f % (DTYPES[dtype].bytes === 1 ? 127 : 30000);
  return t;
}
const vals = (t: HostTensor) => Array.from(t.data as ArrayLike<number>);

describe('shardRange (MAX uneven rule: the first dim mod n shards get one more)', () => {
  it('hand-written cases', () => {
    expect([0, 1, 2].map((i) => shardRange(10, i, 3))).toEqual([[0, 4], [4, 7], [7, 10]]);
    expect(shardSizes(7, 3)).toEqual([3, 2, 2]);
    expect(shardSizes(2, 3)).toEqual([1, 1, 0]);
    expect(shardSizes(12, 4)).toEqual([3, 3, 3, 3]);
    // blocks of 32: 96 = 3 blocks over 2 shards -> 2 blocks + 1 block
    expect([shardRange(96, 0, 2, 32), shardRange(96, 1, 2, 32)]).toEqual([[0, 64], [64, 96]]);
    // partial last block: 100 = 4 blocks (last of 4 rows) over 3 -> 2,1,1 blocks
    expect([0, 1, 2].map((i) => shardRange(100, i, 3, 32))).toEqual([[0, 64], [64, 96], [96, 100]]);
  });
  it('bad input throws ShardingError naming expected and got', () => {
    expect(() => shardRange(10, 3, 3)).toThrow(ShardingError);
    expect(() => shardRange(10, 0, 0)).toThrow(/positive integer, got 0/);
    expect(() => shardRange(-1, 0, 2)).toThrow(ShardingError);
  });
});

describe('ShardingStrategy on hand-written tensors', () => {
  const w = iota([5, 3]); // rows 0..4 of [3f, 3f+1, 3f+2]
  it('rowwise 5 rows over 2: [3, 2]', () => {
    const s = ShardingStrategy.rowwise(2);
    const a = s.shard(w, 0);
    const b = s.shard(w, 1);
    expect(a.tensor.shape).toEqual([3, 3]);
    expect(vals(a.tensor)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(b.ranges).toEqual([[3, 5]]);
    expect(vals(b.tensor)).toEqual([9, 10, 11, 12, 13, 14]);
    expect(a.axis).toBe(0);
  });
  it('columnwise 3 columns over 2: [2, 1]', () => {
    const s = ShardingStrategy.columnwise(2);
    expect(vals(s.shard(w, 0).tensor)).toEqual([0, 1, 3, 4, 6, 7, 9, 10, 12, 13]);
    expect(vals(s.shard(w, 1).tensor)).toEqual([2, 5, 8, 11, 14]);
    expect(s.shardShape([5, 3], 1)).toEqual([5, 1]);
  });
  it('replicate and leader', () => {
    const r = ShardingStrategy.replicate(3).shard(w, 2);
    expect(vals(r.tensor)).toEqual(vals(w));
    expect(r.tensor.data).not.toBe(w.data);
    expect(r.axis).toBeNull();
    expect(vals(ShardingStrategy.leader(3).shard(w, 0).tensor)).toEqual(vals(w));
    expect(vals(ShardingStrategy.leader(3).shard(w, 1).tensor).every((v) => v === 0)).toBe(true);
  });
  it('axiswise(-1) and stacked on [2, 3, 2]', () => {
    const t = iota([2, 3, 2]);
    expect(vals(ShardingStrategy.axiswise(-1, 2).shard(t, 1).tensor)).toEqual([1, 3, 5, 7, 9, 11]);
    const st = ShardingStrategy.stacked(2);
    expect(vals(st.shard(t, 0).tensor)).toEqual([0, 1, 2, 3, 6, 7, 8, 9]);
    expect(vals(st.shard(t, 1).tensor)).toEqual([4, 5, 10, 11]);
  });
  it('gate_up concat [2I=6, H=2] over 2 (I=3 -> 2 + 1): gate rows and the matching up rows', () => {
    const gu = iota([6, 2]); // gate rows 0,1,2; up rows 3,4,5
    const s = ShardingStrategy.gateUp(2);
    const a = s.shard(gu, 0);
    const b = s.shard(gu, 1);
    expect(a.ranges).toEqual([[0, 2], [3, 5]]);
    expect(vals(a.tensor)).toEqual([0, 1, 2, 3, /* up */ 6, 7, 8, 9]);
    expect(b.ranges).toEqual([[2, 3], [5, 6]]);
    expect(vals(b.tensor)).toEqual([4, 5, 10, 11]);
  });
  it('gate_up interleaved [E=1, 2I=6, H=1] over 2: row pairs (2i, 2i+1) stay together', () => {
    const gu = iota([1, 6, 1]);
    const s = ShardingStrategy.gateUp(2, { layout: 'interleaved' });
    expect(vals(s.shard(gu, 0).tensor)).toEqual([0, 1, 2, 3]);
    expect(vals(s.shard(gu, 1).tensor)).toEqual([4, 5]);
  });
  it('gate_up bias [E=2, 2I=4] with axis -1', () => {
    const b = iota([2, 4]);
    expect(vals(ShardingStrategy.gateUp(2, { axis: -1 }).shard(b, 1).tensor)).toEqual([1, 3, 5, 7]);
  });
  it('expert_parallel: contiguous experts, E must divide', () => {
    const e = iota([4, 1, 2]);
    expect(vals(ShardingStrategy.expertParallel(2).shard(e, 1).tensor)).toEqual([4, 5, 6, 7]);
    expect(() => ShardingStrategy.expertParallel(3).shard(e, 0)).toThrow(/divisible by 3, got 4/);
  });
  it('tensor_parallel is module-level: shard() and unshard() on a tensor throw, naming the per-weight strategies', () => {
    const tp = ShardingStrategy.tensorParallel(4, { unit: 32, layout: 'interleaved' });
    expect([tp.numDevices, tp.unit, tp.layout]).toEqual([4, 32, 'interleaved']);
    expect(() => tp.shard(w, 0)).toThrow(ShardingError);
    expect(() => tp.shard(w, 0)).toThrow(/gateUp, axiswise, leader, replicate/);
  });
  it('bad input: typed errors before any work', () => {
    expect(() => ShardingStrategy.rowwise(2).shard(w, 2)).toThrow(ShardingError);
    expect(() => ShardingStrategy.axiswise(3, 2).shard(w, 0)).toThrow(/axis/);
    expect(() => ShardingStrategy.gateUp(2).shard(iota([5, 2]), 0)).toThrow(/even size/);
    expect(() => ShardingStrategy.stacked(2).shard(iota([4]), 0)).toThrow(ShardingError);
    expect(() => ShardingStrategy.rowwise(0)).toThrow(ShardingError);
    expect(() => ShardingStrategy.gateUp(2, { layout: 'x' as 'concat' })).toThrow(ShardingError);
  });
});

describe('random property tests (odd sizes, every dtype)', () => {
  const r = rng(20261128);
  const ri = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  function randomTensor(shape: number[], dtype: DType): HostTensor {
    const t = new HostTensor(dtype, shape);
    const d = t.data as HostArray;
    const span = DTYPES[dtype].bytes === 1 ? 256 : DTYPES[dtype].bytes === 2 ? 65536 : 2 ** 31;
    for (let f = 0; f < t.size; f++) {
      const v = Math.floor(r() * span);
      if (dtype === 'float32') (d as Float32Array)[f] = r() * 100 - 50;
      else if (dtype === 'int8') (d as Int8Array)[f] = v - 128;
      else if (dtype === 'int32') (d as Int32Array)[f] = v - 2 ** 30;
      else (d as Uint8Array)[f] = v;
    }
    return t;
  }
  const same = (a: HostTensor, b: HostTensor) => a.dtype === b.dtype && a.shape.join() === b.shape.join() && Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()));

  it('axis splits: concatenating the shards gives back the tensor; shapes from shardShape; sizes differ by <= 1 unit', () => {
    for (let trial = 0; trial < 60; trial++) {
      const dtype = ALL_DTYPES[trial % ALL_DTYPES.length];
      const rank = ri(1, 4);
      const shape = Array.from({ length: rank }, () => ri(0, 7) * 2 + 1); // odd sizes
      const n = ri(1, 5);
      const t = randomTensor(shape, dtype);
      const axis = ri(-rank, rank - 1);
      const unit = r() < 0.3 ? ri(2, 3) : 1;
      const strategies = [ShardingStrategy.axiswise(axis, n, { unit }), ShardingStrategy.rowwise(n, { unit })];
      if (rank >= 2) strategies.push(ShardingStrategy.columnwise(n, { unit }), ShardingStrategy.stacked(n, { unit }));
      for (const s of strategies) {
        const shards = s.shardAll(t);
        const a = s.shardedAxis(rank)!;
        shards.forEach((sh, i) => {
          expect(sh.tensor.shape).toEqual(s.shardShape(shape, i));
          expect(sh.tensor.dtype).toBe(dtype);
        });
        expect(same(concatAxis(shards.map((x) => x.tensor), a), t), `${s} on [${shape}] ${dtype}`).toBe(true);
        expect(same(s.unshard(shards.map((x) => x.tensor)), t)).toBe(true);
        const sizes = shards.map((x) => x.tensor.shape[a]);
        expect(sizes.reduce((p, q) => p + q, 0)).toBe(shape[a]);
        for (let i = 1; i < n; i++) expect(sizes[i]).toBeLessThanOrEqual(sizes[i - 1]);
        // ranges tile the axis in order
        let at = 0;
        for (const sh of shards) {
          expect(sh.ranges[0][0]).toBe(at);
          at = sh.ranges[0][1];
        }
        expect(at).toBe(shape[a]);
      }
    }
  });

  it('gate_up: each shard holds gate rows g and exactly the up rows I+g (concat) / the pairs (interleaved); unshard round-trips', () => {
    for (let trial = 0; trial < 40; trial++) {
      const dtype = ALL_DTYPES[(trial * 7) % ALL_DTYPES.length];
      const I = ri(1, 13);
      const H = ri(0, 3) * 2 + 1;
      const stackedE = r() < 0.5 ? ri(1, 3) : 0;
      const n = ri(1, 5);
      const layout = r() < 0.5 ? 'concat' : 'interleaved';
      const shape = stackedE ? [stackedE, 2 * I, H] : [2 * I, H];
      const t = randomTensor(shape, dtype);
      // tag each row's gate/up role and intermediate index j via a second tensor of row ids
      const ids = new HostTensor('int32', shape);
      const E = stackedE || 1;
      for (let e = 0; e < E; e++) for (let row = 0; row < 2 * I; row++) for (let h = 0; h < H; h++) (ids.data as Int32Array)[(e * 2 * I + row) * H + h] = row;
      const s = ShardingStrategy.gateUp(n, { layout });
      const shards = s.shardAll(t);
      const idShards = s.shardAll(ids);
      let covered = 0;
      for (let i = 0; i < n; i++) {
        const [g0, g1] = shardRange(I, i, n);
        covered += g1 - g0;
        const rowsInShard = 2 * (g1 - g0);
        expect(shards[i].tensor.shape[shape.length - 2]).toBe(rowsInShard);
        // expected row ids of the shard's rows (first expert)
        const got = Array.from({ length: rowsInShard }, (_, q) => (idShards[i].tensor.data as Int32Array)[q * H]);
        const want =
          layout === 'concat'
            ? [...Array.from({ length: g1 - g0 }, (_, q) => g0 + q), ...Array.from({ length: g1 - g0 }, (_, q) => I + g0 + q)]
            : Array.from({ length: rowsInShard }, (_, q) => 2 * g0 + q);
        expect(got).toEqual(want);
        // a shard is itself a valid gate_up of width g1-g0: its gate half pairs with its up half
        for (let q = 0; q < g1 - g0; q++) {
          const gate = layout === 'concat' ? got[q] : got[2 * q];
          const up = layout === 'concat' ? got[g1 - g0 + q] : got[2 * q + 1];
          expect(layout === 'concat' ? up - gate : up - gate).toBe(layout === 'concat' ? I : 1);
        }
      }
      expect(covered).toBe(I);
      expect(same(s.unshard(shards.map((x) => x.tensor)), t), `gate_up ${layout} [${shape}] n=${n}`).toBe(true);
    }
  });

  it('takeRanges and concatAxis reject bad input', () => {
    const t = iota([3, 2]);
    expect(() => takeRanges(t, 0, [[2, 4]])).toThrow(ShardingError);
    expect(() => concatAxis([t, iota([3, 3])], 0)).toThrow(ShardingError);
    expect(() => concatAxis([t, iota([3, 2], 'bfloat16')], 0)).toThrow(ShardingError);
  });
});
