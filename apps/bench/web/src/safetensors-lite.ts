// A minimal safetensors reader for the demo page, used only until
// @webmoe/tensor exports its own reader. Reads the whole file from bytes.
import type { DType } from '@webmoe/tensor';
import { ALL_DTYPES, DTYPES, HostTensor, viewHost } from '@webmoe/tensor';

const BY_ST: Record<string, DType> = Object.fromEntries(ALL_DTYPES.map((d) => [DTYPES[d].safetensors, d]));

/** Parses a .safetensors file into host tensors by name (throws on a malformed file). */
export function readSafetensorsLite(bytes: Uint8Array): Map<string, HostTensor> {
  if (bytes.byteLength < 8) throw new Error(`safetensors: file of ${bytes.byteLength} bytes is too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new Error(`safetensors: header of ${n} bytes runs past the end of the ${bytes.byteLength}-byte file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const data = bytes.subarray(8 + n);
  const out = new Map<string, HostTensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = BY_ST[e.dtype];
    if (!dtype) throw new Error(`safetensors: tensor ${name} has dtype ${e.dtype}, which is not one of ${Object.keys(BY_ST).join(', ')}`);
    const [a, b] = e.data_offsets;
    out.set(name, new HostTensor(dtype, e.shape, viewHost(dtype, data.subarray(a, b))));
  }
  return out;
}
