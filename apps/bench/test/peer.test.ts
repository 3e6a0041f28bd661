import { describe, expect, it } from 'vitest';
import { initializer, model, node, peerRequired, valueInfo } from '@webmoe/kernels-wgsl/testing';
import { loadOrt, PeerMissingError, qmoeWeightBytes } from '../src/peer-ort.js';
import { findModel } from '../src/models.js';

describe('onnxruntime peer', () => {
  it('onnxruntime-node loads and runs a model the bench writes (checked numbers), or is visibly missing', async (c) => {
    let ort: Awaited<ReturnType<typeof loadOrt>>;
    try {
      ort = await loadOrt();
    } catch (e) {
      expect(e).toBeInstanceOf(PeerMissingError);
      expect((e as Error).message).toMatch(/could not import 'onnxruntime-node'.*not a dependency.*WITH_ORT=1/s);
      // CI with the package installed must run the peer; otherwise its absence is a visible skip
      if (await peerRequired('onnxruntime-node', import.meta.url)) throw new Error(`onnxruntime-node is installed but does not load: ${(e as Error).message}`);
      return c.skip(`onnxruntime-node is not installed next to the bench: ${(e as Error).message.split('.')[0]}`);
    }
    // y = x @ W (MatMul, W an initializer written by the bench's protobuf writer), on the CPU EP
    const W = Float32Array.from([1, 2, 3, 4, 5, 6]); // [3, 2]
    const bytes = model({
      opsets: { '': 17 },
      nodes: [node('MatMul', ['x', 'w'], ['y'], {})],
      inputs: [valueInfo('x', 'float32', ['T', 3])],
      outputs: [valueInfo('y', 'float32', ['T', 2])],
      initializers: [initializer('w', 'float32', [3, 2], new Uint8Array(W.buffer))],
    });
    const sess = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    try {
      const out = await sess.run({ x: new ort.Tensor('float32', Float32Array.from([1, 0, -1, 0.5, 2, 0]), [2, 3]) });
      const y = (out.y as { data: Float32Array }).data;
      // [1, 0, -1] @ W = [1 - 5, 2 - 6]; [0.5, 2, 0] @ W = [0.5 + 6, 1 + 8]
      expect(Array.from(y)).toEqual([-4, -4, 6.5, 9]);
    } finally {
      await sess.release();
    }
  });
  it('int4 QMoE bytes (hand computed)', () => {
    const m = { ...findModel('tiny'), H: 64, I: 32 };
    // per expert: codes 3*64*32/2 = 3072, scales (2*32*2 + 64*1)*2 = 384, biases (64 + 64)*2 = 256
    expect(qmoeWeightBytes(m, 2)).toBe(2 * (3072 + 384 + 256));
  });
  it('writes protobuf an ONNX reader would parse (field layout)', () => {
    const bytes = model({
      opsets: { '': 17, 'com.microsoft': 1 },
      nodes: [node('QMoE', ['input'], ['output'], { k: 2, activation_type: 'swiglu', swiglu_limit: { float: 7 } }, 'com.microsoft')],
      inputs: [valueInfo('input', 'float16', ['T', 300])],
      outputs: [valueInfo('output', 'float16', ['T', 300])],
      initializers: [initializer('w', 'uint8', [2, 2], new Uint8Array([1, 2, 3, 4]))],
    });
    // ir_version (field 1, varint) = 8, then producer_name (field 2, length-delimited)
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0x08, 0x08, 0x12, 'webmoe-bench'.length]);
    const text = new TextDecoder('latin1').decode(bytes);
    for (const s of ['QMoE', 'com.microsoft', 'swiglu', 'input', 'output']) expect(text).toContain(s);
    // dim 300 as a varint: 0xac 0x02
    expect(Buffer.from(bytes).includes(Buffer.from([0x08, 0xac, 0x02]))).toBe(true);
    // the initializer's raw data, length-delimited in field 9 (tag 0x4a)
    expect(Buffer.from(bytes).includes(Buffer.from([0x4a, 4, 1, 2, 3, 4]))).toBe(true);
    // the float attribute: field 2 fixed32 (tag 0x15) little-endian 7.0f
    expect(Buffer.from(bytes).includes(Buffer.from([0x15, 0x00, 0x00, 0xe0, 0x40]))).toBe(true);
  });
});
