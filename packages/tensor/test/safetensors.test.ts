import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { mkdtemp, writeFile, readFile, readdir, mkdir, rm, open as fsOpen } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SafetensorsFile,
  SafetensorsError,
  ByteSourceError,
  bytesSource,
  blobSource,
  urlSource,
  serializeSafetensors,
  HostTensor,
  type ByteSource,
  type RawTensor,
} from '@webmoe/tensor';
import { fileSource, writeSafetensorsFile } from '@webmoe/tensor/node';

const FIX = (process.env.WEBMOE_FIXTURES ? process.env.WEBMOE_FIXTURES + '/hf-moe' : fileURLToPath(new URL('../../../../shared/fixtures/hf-moe', import.meta.url)));
const fixtureFiles = readdirSync(FIX)
  .flatMap((d) => ['model.safetensors', 'golden.safetensors'].map((f) => join(FIX, d, f)))
  .filter((p) => existsSync(p));

/** Independent header parse (for cross-checking values): JSON after the u64 length. */
function rawHeader(bytes: Uint8Array): { n: number; header: Record<string, any> } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) };
}

/** Builds a file from a header (object or raw text) and `dataLen` bytes of data. */
function craft(header: unknown, dataLen: number, lengthOverride?: number): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? h.length), true);
  out.set(h, 8);
  for (let i = 0; i < dataLen; i++) out[8 + h.length + i] = i & 0xff;
  return out;
}

async function expectCode(p: Promise<unknown>, code: string, ...inMessage: (string | RegExp)[]): Promise<SafetensorsError> {
  const e = await p.then(
    () => {
      throw new Error(`expected SafetensorsError ${code}, got success`);
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SafetensorsError);
  const se = e as SafetensorsError;
  expect(se.code).toBe(code);
  for (const m of inMessage) expect(se.message).toMatch(m);
  return se;
}

describe('fixtures: read and byte-exact round trip', () => {
  it('finds the fixture files', () => {
    expect(fixtureFiles.length).toBeGreaterThanOrEqual(18);
  });
  for (const p of fixtureFiles) {
    it(`${p.slice(FIX.length + 1)} reads, re-serialises byte for byte`, async () => {
      const orig = new Uint8Array(readFileSync(p));
      const st = await SafetensorsFile.open(bytesSource(orig, p));
      const { header } = rawHeader(orig);
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      expect(new Set(st.keys())).toEqual(new Set(names));
      expect(st.metadata).toEqual(header.__metadata__);
      const all: Record<string, HostTensor | RawTensor> = {};
      for (const k of st.keys()) {
        const info = st.info(k);
        expect(info.shape).toEqual(header[k].shape);
        expect(info.stDtype).toBe(header[k].dtype);
        all[k] = info.dtype ? await st.read(k) : await st.readRaw(k);
      }
      const out = serializeSafetensors(all, st.metadata);
      expect(out.byteLength).toBe(orig.byteLength);
      expect(Buffer.compare(Buffer.from(out), Buffer.from(orig))).toBe(0);
    });
  }
  it('values of an F32 and a BF16 tensor match an independent decode of the file', async () => {
    const orig = new Uint8Array(readFileSync(join(FIX, 'mixtral/golden.safetensors')));
    const { n, header } = rawHeader(orig);
    const st = await SafetensorsFile.open(bytesSource(orig));
    const dv = new DataView(orig.buffer);
    const base = 8 + n;
    const inp = await st.read('input');
    expect(inp.dtype).toBe('float32');
    const [b0] = header.input.data_offsets;
    for (let i = 0; i < inp.size; i += 37) expect(inp.data[i]).toBe(dv.getFloat32(base + b0 + 4 * i, true));
    const ib = await st.read('input_bf16');
    expect(ib.dtype).toBe('bfloat16');
    const [b1] = header.input_bf16.data_offsets;
    const f = ib.toFloat32();
    for (let i = 0; i < ib.size; i += 37) {
      const bits = dv.getUint16(base + b1 + 2 * i, true);
      const want = new DataView(new Uint32Array([bits << 16]).buffer).getFloat32(0, true);
      expect(f[i]).toBe(want);
    }
  });
});

describe('every dtype: HostTensor dtypes and raw-only dtypes', () => {
  it('round trips F32 F16 BF16 F8_E4M3 F8_E5M2 I8 U8 I32 U32 and raw BOOL I16 U16 I64 U64 F64', async () => {
    const t = {
      f32: new HostTensor('float32', [2], new Float32Array([1.5, -2])),
      f16: new HostTensor('float16', [2], new Uint16Array([0x3c00, 0xc000])),
      bf16: new HostTensor('bfloat16', [1, 2], new Uint16Array([0x3f80, 0x4000])),
      e4: new HostTensor('float8_e4m3fn', [3], new Uint8Array([0x38, 0x7e, 0x80])),
      e5: new HostTensor('float8_e5m2', [1], new Uint8Array([0x3c])),
      i8: new HostTensor('int8', [2], new Int8Array([-128, 127])),
      u8: new HostTensor('uint8', [2], new Uint8Array([0, 255])),
      i32: new HostTensor('int32', [1], new Int32Array([-7])),
      u32: new HostTensor('uint32', [1], new Uint32Array([0xffffffff])),
      scalar: new HostTensor('float32', [], new Float32Array([3])),
      empty: new HostTensor('float32', [0, 4], new Float32Array(0)),
    };
    const raws: Record<string, RawTensor> = {
      b: { stDtype: 'BOOL', shape: [3], bytes: new Uint8Array([1, 0, 1]) },
      i16: { stDtype: 'I16', shape: [1], bytes: new Uint8Array([0xff, 0x7f]) },
      u16: { stDtype: 'U16', shape: [1], bytes: new Uint8Array([1, 2]) },
      i64: { stDtype: 'I64', shape: [1], bytes: new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0x80]) },
      u64: { stDtype: 'U64', shape: [1], bytes: new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0]) },
      f64: { stDtype: 'F64', shape: [1], bytes: new Uint8Array(new Float64Array([Math.PI]).buffer) },
    };
    const bytes = serializeSafetensors({ ...t, ...raws }, { format: 'pt', note: 'x"y\n\u00e9' });
    // Python layout rules: widest dtype first (enum order U64 > I64 > F64 > F32 > ...), names sorted inside a dtype.
    const { header } = rawHeader(bytes);
    expect(Object.keys(header)).toEqual(['__metadata__', 'u64', 'i64', 'f64', 'empty', 'f32', 'scalar', 'u32', 'i32', 'bf16', 'f16', 'u16', 'i16', 'e4', 'e5', 'i8', 'u8', 'b']);
    expect((8 + rawHeader(bytes).n) % 8).toBe(0);
    const st = await SafetensorsFile.open(bytesSource(bytes));
    expect(st.metadata).toEqual({ format: 'pt', note: 'x"y\n\u00e9' });
    for (const [k, v] of Object.entries(t)) {
      const r = await st.read(k);
      expect(r.dtype).toBe(v.dtype);
      expect(r.shape).toEqual(v.shape);
      expect(Array.from(r.data)).toEqual(Array.from(v.data));
    }
    for (const [k, v] of Object.entries(raws)) {
      const r = await st.readRaw(k);
      expect(r.stDtype).toBe(v.stDtype);
      expect(Array.from(r.bytes)).toEqual(Array.from(v.bytes));
      await expectCode(st.read(k), 'UNSUPPORTED_DTYPE', k, v.stDtype, /readRaw/);
    }
  });
  it('the Rust library test vector: one F32 tensor "attn.0" [1,2,3]', () => {
    const out = serializeSafetensors({ 'attn.0': new HostTensor('float32', [1, 2, 3], new Float32Array([0, 1, 2, 3, 4, 5])) });
    // From safetensors/src/tensor.rs test_serialization.
    expect(Array.from(out)).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44,
      51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64,
    ]);
    expect(Array.from(serializeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  });
});

describe('malformed files give typed errors naming the problem', () => {
  const good = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'U8', shape: [4], data_offsets: [16, 20] } };
  it('accepts the well-formed base case', async () => {
    const st = await SafetensorsFile.open(bytesSource(craft(good, 20), 'ok.safetensors'));
    expect(st.keys()).toEqual(['a', 'b']);
    expect(st.info('b').byteRange[1] - st.info('b').byteRange[0]).toBe(4);
  });
  it('a file shorter than 8 bytes: TRUNCATED', async () => {
    await expectCode(SafetensorsFile.open(bytesSource(new Uint8Array(5), 'tiny.st')), 'TRUNCATED', 'tiny.st', /at least 8 bytes/, /got 5/);
  });
  it('a real file cut short: TRUNCATED, naming the tensor past the end', async () => {
    const orig = new Uint8Array(readFileSync(join(FIX, 'olmoe/golden.safetensors')));
    const cut = orig.slice(0, orig.byteLength - 100);
    await expectCode(SafetensorsFile.open(bytesSource(cut, 'olmoe/golden.safetensors')), 'TRUNCATED', 'olmoe/golden.safetensors', 'output_bf16', /truncated/);
  });
  it('header length larger than the file: HEADER_TOO_LARGE', async () => {
    const f = craft(good, 20, 10_000);
    await expectCode(SafetensorsFile.open(bytesSource(f, 'big.st')), 'HEADER_TOO_LARGE', 'big.st', /10000/);
  });
  it('offsets that run past the end of the data section: OFFSET_OUT_OF_RANGE', async () => {
    const h = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, far: { dtype: 'U8', shape: [4], data_offsets: [1000, 1004] } };
    await expectCode(SafetensorsFile.open(bytesSource(craft(h, 20), 'far.st')), 'OFFSET_OUT_OF_RANGE', 'far.st', 'far', /\[1000, 1004\]/, /\[0, 20\]/);
  });
  it('byte length that disagrees with the shape: BYTE_LENGTH_MISMATCH', async () => {
    const h = { a: { dtype: 'BF16', shape: [3, 2], data_offsets: [0, 16] } };
    await expectCode(SafetensorsFile.open(bytesSource(craft(h, 16), 'len.st')), 'BYTE_LENGTH_MISMATCH', 'len.st', 'tensor a', /expected 12 bytes/, /16 bytes/);
  });
  it('overlapping tensors: OVERLAP naming both', async () => {
    const h = { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } };
    await expectCode(SafetensorsFile.open(bytesSource(craft(h, 16), 'ov.st')), 'OVERLAP', 'ov.st', /tensor b/, /tensor a/);
  });
  it('bad JSON: BAD_HEADER', async () => {
    await expectCode(SafetensorsFile.open(bytesSource(craft('{"a": {"dtype": "F32",', 0), 'json.st')), 'BAD_HEADER', 'json.st', /JSON/);
    await expectCode(SafetensorsFile.open(bytesSource(craft('[1,2]', 0), 'arr.st')), 'BAD_HEADER', /'\{'/);
    await expectCode(SafetensorsFile.open(bytesSource(craft({ __metadata__: { a: 1 } }, 0), 'meta.st')), 'BAD_HEADER', /__metadata__\.a/);
  });
  it('unknown dtype: UNKNOWN_DTYPE', async () => {
    const h = { a: { dtype: 'F12', shape: [1], data_offsets: [0, 2] } };
    await expectCode(SafetensorsFile.open(bytesSource(craft(h, 2), 'dt.st')), 'UNKNOWN_DTYPE', 'dt.st', 'tensor a', /"F12"/, /BF16/);
  });
  it('bad shape and bad offsets', async () => {
    await expectCode(SafetensorsFile.open(bytesSource(craft({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, 0))), 'BAD_SHAPE', /\[-1\]/);
    await expectCode(SafetensorsFile.open(bytesSource(craft({ a: { dtype: 'U8', shape: [1.5], data_offsets: [0, 0] } }, 0))), 'BAD_SHAPE');
    await expectCode(SafetensorsFile.open(bytesSource(craft({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, 4))), 'BAD_OFFSETS', /\[4,2\]/);
  });
  it('missing tensor: MISSING_TENSOR naming it', async () => {
    const st = await SafetensorsFile.open(bytesSource(craft(good, 20), 'ok.st'));
    await expectCode(st.read('nope.weight'), 'MISSING_TENSOR', 'ok.st', /"nope\.weight"/);
  });
});

describe('byte sources', () => {
  const data = new Uint8Array(Array.from({ length: 100 }, (_, i) => i));
  it('bytesSource and blobSource read exact ranges and reject reads outside', async () => {
    for (const s of [bytesSource(data, 'b'), blobSource(new Blob([data]), 'blob')]) {
      expect(s.size).toBe(100);
      expect(Array.from(await s.read(10, 3))).toEqual([10, 11, 12]);
      expect((await s.read(100, 0)).byteLength).toBe(0);
      await expect(s.read(98, 5)).rejects.toBeInstanceOf(ByteSourceError);
      await expect(s.read(-1, 1)).rejects.toThrow(/expected a read inside \[0, 100\)/);
    }
  });
  it('SafetensorsFile works over a Blob', async () => {
    const bytes = readFileSync(join(FIX, 'llama4_text/golden.safetensors'));
    const st = await SafetensorsFile.open(blobSource(new Blob([bytes]), 'g.st'));
    expect((await st.read('input')).shape).toEqual([16, 64]);
  });

  function fakeServer(body: Uint8Array, honourRanges: boolean) {
    const log: (string | null)[] = [];
    const f = (async (_url: string, init?: RequestInit) => {
      const range = new Headers(init?.headers).get('Range');
      log.push(range);
      if (_url.endsWith('/missing')) return new Response('no', { status: 404 });
      const m = range && /^bytes=(\d+)-(\d+)$/.exec(range);
      if (honourRanges && m) {
        const a = Number(m[1]);
        const b = Math.min(Number(m[2]), body.byteLength - 1);
        return new Response(body.slice(a, b + 1), { status: 206, headers: { 'Content-Range': `bytes ${a}-${b}/${body.byteLength}` } });
      }
      return new Response(body.slice(), { status: 200 });
    }) as typeof fetch;
    return { f, log };
  }
  it('urlSource uses Range requests and reads only what is asked', async () => {
    const bytes = new Uint8Array(readFileSync(join(FIX, 'qwen3_moe/golden.safetensors')));
    const { f, log } = fakeServer(bytes, true);
    const src = await urlSource('http://x/golden.safetensors', { fetch: f });
    expect(src.size).toBe(bytes.byteLength);
    const st = await SafetensorsFile.open(src);
    const t = await st.read('output');
    const { n, header } = rawHeader(bytes);
    const [b, e] = header.output.data_offsets;
    expect(log).toEqual(['bytes=0-0', 'bytes=0-7', `bytes=8-${8 + n - 1}`, `bytes=${8 + n + b}-${8 + n + e - 1}`]);
    expect(Buffer.compare(Buffer.from(t.bytes()), Buffer.from(bytes.subarray(8 + n + b, 8 + n + e)))).toBe(0);
  });
  it('urlSource falls back to one full GET when the server ignores ranges; 404 is NOT_FOUND', async () => {
    const bytes = new Uint8Array(readFileSync(join(FIX, 'qwen3_moe/golden.safetensors')));
    const { f, log } = fakeServer(bytes, false);
    const src = await urlSource('http://x/golden.safetensors', { fetch: f });
    const st = await SafetensorsFile.open(src);
    expect((await st.read('input')).size).toBe(16 * 64);
    expect(log.length).toBe(1);
    await expect(urlSource('http://x/missing', { fetch: f })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
  it('fileSource reads only the requested ranges (counted through a wrapper) and opens without reading', async () => {
    const p = join(FIX, 'deepseek_v3_fp8/model.safetensors');
    const src = await fileSource(p);
    const reads: [number, number][] = [];
    const counting: ByteSource = { size: src.size, name: src.name, read: (o, l) => (reads.push([o, l]), src.read(o, l)), close: () => src.close!() };
    const st = await SafetensorsFile.open(counting);
    const name = st.keys().find((k) => k.endsWith('experts.0.down_proj.weight'))!;
    const t = await st.read(name);
    await st.close();
    const orig = new Uint8Array(readFileSync(p));
    const { n, header } = rawHeader(orig);
    const [b, e] = header[name].data_offsets;
    expect(reads).toEqual([[0, 8], [8, n], [8 + n + b, e - b]]);
    const total = reads.reduce((a, [, l]) => a + l, 0);
    expect(total).toBe(8 + n + (e - b));
    expect(total).toBeLessThan(orig.byteLength / 10);
    expect(t.dtype).toBe('float8_e4m3fn');
    expect(Buffer.compare(Buffer.from(t.bytes()), Buffer.from(orig.subarray(8 + n + b, 8 + n + e)))).toBe(0);
    await expect(src.read(0, 1)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(fileSource('/nonexistent/x.safetensors')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('large files and browser safety', () => {
  it('a 60 GB (sparse) checkpoint opens through fileSource without reading its data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'st-big-'));
    const p = join(dir, 'big.safetensors');
    try {
      const big = 60_000_000_000;
      const header = { __metadata__: { format: 'pt' }, big: { dtype: 'U8', shape: [big], data_offsets: [0, big] }, small: { dtype: 'F32', shape: [4], data_offsets: [big, big + 16] } };
      const head = craft(header, 0);
      const fh = await fsOpen(p, 'w');
      await fh.write(head, 0, head.byteLength, 0);
      const small = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
      await fh.write(small, 0, 16, head.byteLength + big);
      await fh.close();
      const src = await fileSource(p);
      expect(src.size).toBe(head.byteLength + big + 16);
      let bytesRead = 0;
      const counting: ByteSource = { size: src.size, read: (o, l) => ((bytesRead += l), src.read(o, l)), close: () => src.close!() };
      const st = await SafetensorsFile.open(counting, 'big.safetensors');
      expect(st.info('big').shape).toEqual([big]);
      expect(Array.from((await st.read('small')).data)).toEqual([1, 2, 3, 4]);
      expect(bytesRead).toBe(head.byteLength + 16);
      await st.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('the main entry imports no node: module (only src/node.ts may)', () => {
    const src = join(__dirname, '..', 'src');
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      const text = readFileSync(join(src, f), 'utf8');
      expect(text, f).not.toMatch(/from\s+['"]node:|require\(|\bBuffer\b|\bprocess\./);
      for (const m of text.matchAll(/from\s+'\.\/([\w-]+)\.js'/g)) visit(`${m[1]}.ts`);
    };
    visit('index.ts');
    expect(seen.has('safetensors.ts') && seen.has('checkpoint.ts') && seen.has('byte-source.ts') && seen.has('quant-fp8.ts')).toBe(true);
    expect(seen.has('node.ts')).toBe(false);
  });
});

describe('writeSafetensorsFile', () => {
  it('writes the same bytes as serializeSafetensors, atomically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'st-write-'));
    try {
      const orig = new Uint8Array(readFileSync(join(FIX, 'gpt_oss_mxfp4/model.safetensors')));
      const st = await SafetensorsFile.open(bytesSource(orig));
      const all: Record<string, HostTensor> = {};
      for (const k of st.keys()) all[k] = await st.read(k);
      const out = join(dir, 'm.safetensors');
      await writeSafetensorsFile(out, all, st.metadata);
      expect(Buffer.compare(await readFile(out), Buffer.from(orig))).toBe(0);
      // A failing write leaves the old file untouched and no temp file behind.
      const bad = { x: { stDtype: 'F32', shape: [3], bytes: new Uint8Array(4) } };
      await expect(writeSafetensorsFile(out, bad)).rejects.toMatchObject({ code: 'BYTE_LENGTH_MISMATCH' });
      expect(Buffer.compare(await readFile(out), Buffer.from(orig))).toBe(0);
      const target = join(dir, 'is-a-dir');
      await mkdir(target);
      await writeFile(join(target, 'keep'), 'k');
      await expect(writeSafetensorsFile(target, all)).rejects.toThrow();
      expect((await readdir(dir)).sort()).toEqual(['is-a-dir', 'm.safetensors']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
