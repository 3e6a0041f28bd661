/**
 * A minimal ONNX ModelProto writer (protobuf wire format by hand), enough
 * for one-node graphs with raw-data initializers (the onnxruntime QMoE peer of
 * the bench and the tests). Large initializers are kept as references and
 * copied once into the final buffer. Exported through
 * `@webmoe/kernels-wgsl/testing`.
 */

/** An encoded message: its parts and total length. */
export interface Msg {
  /** The encoded bytes, in order (large initializers by reference). */
  parts: Uint8Array[];
  /** Their total length in bytes. */
  len: number;
}

function varint(n: number | bigint): Uint8Array {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Uint8Array.from(out);
}

class Writer {
  parts: Uint8Array[] = [];
  len = 0;
  private push(p: Uint8Array) {
    this.parts.push(p);
    this.len += p.byteLength;
  }
  tag(field: number, wire: number) {
    this.push(varint((field << 3) | wire));
  }
  int(field: number, v: number) {
    this.tag(field, 0);
    this.push(varint(v));
  }
  float(field: number, v: number) {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  bytes(field: number, b: Uint8Array) {
    this.tag(field, 2);
    this.push(varint(b.byteLength));
    this.push(b);
  }
  str(field: number, s: string) {
    this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Msg) {
    this.tag(field, 2);
    this.push(varint(m.len));
    for (const p of m.parts) this.push(p);
  }
  done(): Msg {
    return { parts: this.parts, len: this.len };
  }
}

/** ONNX TensorProto.DataType codes used here. */
export const ONNX_DT = { float32: 1, uint8: 2, int32: 6, int64: 7, float16: 10 } as const;
/** Element types the writer knows. */
export type OnnxDtype = keyof typeof ONNX_DT;

/** A graph input/output: name, element type and dims (strings are symbolic). */
export function valueInfo(name: string, dtype: OnnxDtype, dims: (number | string)[]): Msg {
  const shape = new Writer();
  for (const d of dims) {
    const dim = new Writer();
    if (typeof d === 'string') dim.str(2, d);
    else dim.int(1, d);
    shape.msg(1, dim.done());
  }
  const tensor = new Writer();
  tensor.int(1, ONNX_DT[dtype]);
  tensor.msg(2, shape.done());
  const type = new Writer();
  type.msg(1, tensor.done());
  const vi = new Writer();
  vi.str(1, name);
  vi.msg(2, type.done());
  return vi.done();
}

/** An initializer with raw little-endian data. */
export function initializer(name: string, dtype: OnnxDtype, dims: number[], data: ArrayBufferView): Msg {
  const t = new Writer();
  for (const d of dims) t.int(1, d);
  t.int(2, ONNX_DT[dtype]);
  t.str(8, name);
  t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return t.done();
}

/** Attribute values: string, int, `{ float }`. */
export type AttrValue = string | number | { float: number };

/** A node. */
export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue>, domain = ''): Msg {
  const n = new Writer();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, `${opType}_0`);
  n.str(4, opType);
  for (const [k, v] of Object.entries(attrs)) {
    const a = new Writer();
    a.str(1, k);
    if (typeof v === 'string') {
      a.bytes(4, new TextEncoder().encode(v));
      a.int(20, 3);
    } else if (typeof v === 'number') {
      a.int(3, v);
      a.int(20, 2);
    } else {
      a.float(2, v.float);
      a.int(20, 1);
    }
    n.msg(5, a.done());
  }
  if (domain) n.str(7, domain);
  return n.done();
}

/**
 * A ModelProto (IR version 8) as one buffer.
 * @example `const bytes = model({ nodes: [...], inputs: [...], outputs: [...], initializers: [...], opsets: { '': 17 } })`
 */
export function model(g: { nodes: Msg[]; inputs: Msg[]; outputs: Msg[]; initializers: Msg[]; opsets: Record<string, number> }): Uint8Array {
  const graph = new Writer();
  for (const n of g.nodes) graph.msg(1, n);
  graph.str(2, 'g');
  for (const i of g.initializers) graph.msg(5, i);
  for (const i of g.inputs) graph.msg(11, i);
  for (const o of g.outputs) graph.msg(12, o);
  const m = new Writer();
  m.int(1, 8);
  m.str(2, 'webmoe-bench');
  m.msg(7, graph.done());
  for (const [domain, version] of Object.entries(g.opsets)) {
    const o = new Writer();
    if (domain) o.str(1, domain);
    o.int(2, version);
    m.msg(8, o.done());
  }
  const d = m.done();
  const out = new Uint8Array(d.len);
  let off = 0;
  for (const p of d.parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
