// A tiny ONNX ModelProto writer (protobuf wire format by hand) for one-node test graphs with raw-data initializers.
// Field numbers from onnx.proto: ModelProto{ir_version=1, producer_name=2, graph=7, opset_import=8},
// GraphProto{node=1, name=2, initializer=5, input=11, output=12}, NodeProto{input=1, output=2, name=3, op_type=4, attribute=5, domain=7},
// AttributeProto{name=1, f=2, i=3, s=4, type=20}, TensorProto{dims=1, data_type=2, name=8, raw_data=9},
// ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1}, TypeProto.Tensor{elem_type=1, shape=2}, TensorShapeProto{dim=1}, Dimension{dim_value=1}.

type Bytes = Uint8Array;
const cat = (parts: Bytes[]): Bytes => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
function varint(n: number): Bytes {
  const out: number[] = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Uint8Array.from(out);
}
const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, v: number) => cat([key(field, 0), varint(v)]);
const bytes = (field: number, b: Bytes) => cat([key(field, 2), varint(b.length), b]);
const str = (field: number, s: string) => bytes(field, new TextEncoder().encode(s));
const f32 = (field: number, v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, v, true);
  return cat([key(field, 5), b]);
};

export const ONNX_DT = { float32: 1, uint8: 2, float16: 10 } as const;
export type OnnxDt = keyof typeof ONNX_DT;

export function valueInfo(name: string, dt: OnnxDt, dims: number[]): Bytes {
  const shape = cat(dims.map((d) => bytes(1, int(1, d))));
  const tensorType = cat([int(1, ONNX_DT[dt]), bytes(2, shape)]);
  return cat([str(1, name), bytes(2, bytes(1, tensorType))]);
}
export function initializer(name: string, dt: OnnxDt, dims: number[], data: ArrayBufferView): Bytes {
  return cat([...dims.map((d) => int(1, d)), int(2, ONNX_DT[dt]), str(8, name), bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))]);
}
export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, number | { float: number } | string>, domain = ''): Bytes {
  const a = Object.entries(attrs).map(([k, v]) =>
    bytes(5, cat([str(1, k), typeof v === 'string' ? cat([bytes(4, new TextEncoder().encode(v)), int(20, 3)]) : typeof v === 'number' ? cat([int(3, v), int(20, 2)]) : cat([f32(2, v.float), int(20, 1)])])),
  );
  return cat([...inputs.map((i) => str(1, i)), ...outputs.map((o) => str(2, o)), str(3, `${op}_0`), str(4, op), ...a, ...(domain ? [str(7, domain)] : [])]);
}
export function model(g: { nodes: Bytes[]; inputs: Bytes[]; outputs: Bytes[]; initializers: Bytes[]; opsets: Record<string, number> }): Bytes {
  const graph = cat([...g.nodes.map((n) => bytes(1, n)), str(2, 'g'), ...g.initializers.map((i) => bytes(5, i)), ...g.inputs.map((i) => bytes(11, i)), ...g.outputs.map((o) => bytes(12, o))]);
  const opsets = Object.entries(g.opsets).map(([d, v]) => bytes(8, cat([...(d ? [str(1, d)] : []), int(2, v)])));
  return cat([int(1, 8), str(2, 'webmoe-test'), bytes(7, graph), ...opsets]);
}
