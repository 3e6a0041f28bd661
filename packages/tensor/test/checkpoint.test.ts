import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, SafetensorsFile, SafetensorsError, bytesSource, memorySource, urlDirSource, readConfig, serializeSafetensors, type HostTensor, type CheckpointSource } from '@webmoe/tensor';
import { dirSource } from '@webmoe/tensor/node';

const DIR = (process.env.WEBMOE_FIXTURES ? process.env.WEBMOE_FIXTURES + '/hf-moe' : fileURLToPath(new URL('../../../../shared/fixtures/hf-moe', import.meta.url))) + '/deepseek_v3';
const model = new Uint8Array(readFileSync(join(DIR, 'model.safetensors')));
const config = new Uint8Array(readFileSync(join(DIR, 'config.json')));

/** Splits the fixture into two shards plus an HF-style index (weight_map). */
async function split(): Promise<{ files: Record<string, Uint8Array>; names: string[]; a: string[]; b: string[] }> {
  const st = await SafetensorsFile.open(bytesSource(model));
  const names = st.keys();
  const a = names.filter((_, i) => i % 2 === 0);
  const b = names.filter((_, i) => i % 2 === 1);
  const pick = async (ks: string[]) => {
    const o: Record<string, HostTensor> = {};
    for (const k of ks) o[k] = await st.read(k);
    return serializeSafetensors(o, { format: 'pt' });
  };
  const s1 = 'model-00001-of-00002.safetensors';
  const s2 = 'model-00002-of-00002.safetensors';
  const weight_map: Record<string, string> = {};
  for (const k of a) weight_map[k] = s1;
  for (const k of b) weight_map[k] = s2;
  const index = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: model.byteLength }, weight_map }));
  return { files: { 'config.json': config, 'model.safetensors.index.json': index, [s1]: await pick(a), [s2]: await pick(b) }, names, a, b };
}

async function expectCode(p: Promise<unknown>, code: string, ...inMessage: (string | RegExp)[]): Promise<void> {
  const e = await p.then(
    () => new Error('resolved'),
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(SafetensorsError);
  expect((e as SafetensorsError).code).toBe(code);
  for (const m of inMessage) expect((e as Error).message).toMatch(m);
}

describe('Checkpoint', () => {
  it('single-file checkpoint from a directory on disk; readConfig', async () => {
    const ck = await Checkpoint.open(dirSource(DIR));
    const st = await SafetensorsFile.open(bytesSource(model));
    expect(ck.keys()).toEqual(st.keys());
    const k = 'model.layers.0.mlp.gate.weight';
    expect(ck.has(k)).toBe(true);
    expect(ck.info(k).shape).toEqual(st.info(k).shape);
    expect(ck.info(k).file).toMatch(/model\.safetensors$/);
    expect(Array.from((await ck.read(k)).data)).toEqual(Array.from((await st.read(k)).data));
    const cfg = await ck.readConfig();
    expect(cfg).toEqual(JSON.parse(new TextDecoder().decode(config)));
    await ck.close();
  });

  it('sharded checkpoint in memory: every tensor equals the single file', async () => {
    const { files, names, b } = await split();
    const ck = await Checkpoint.open(memorySource(files, 'mem'));
    const st = await SafetensorsFile.open(bytesSource(model));
    expect(new Set(ck.keys())).toEqual(new Set(names));
    expect(ck.shards.size).toBe(2);
    expect(ck.info(b[0]).file).toBe('mem/model-00002-of-00002.safetensors');
    for (const k of names) {
      const x = await ck.read(k);
      const y = await st.read(k);
      expect(x.shape).toEqual(y.shape);
      expect(Buffer.compare(Buffer.from(x.bytes()), Buffer.from(y.bytes()))).toBe(0);
    }
    expect((await readConfig(memorySource(files))).model_type).toBe('deepseek_v3');
  });

  it('sharded checkpoint on disk (dirSource) and over Blobs', async () => {
    const { files, names } = await split();
    const dir = await mkdtemp(join(tmpdir(), 'ck-'));
    try {
      for (const [n, v] of Object.entries(files)) await writeFile(join(dir, n), v);
      const ck = await Checkpoint.open(dirSource(dir));
      expect(ck.keys().length).toBe(names.length);
      expect((await ck.read(names[3])).shape.length).toBeGreaterThan(0);
      await ck.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const blobs = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, new Blob([v])]));
    const ck2 = await Checkpoint.open(memorySource(blobs));
    expect((await ck2.read(names[1])).size).toBeGreaterThan(0);
  });

  it('missing key names it; missing shard names the file; bad index and no files are typed', async () => {
    const { files } = await split();
    const ck = await Checkpoint.open(memorySource(files, 'mem'));
    expect(ck.has('model.layers.9.mlp.gate.weight')).toBe(false);
    expect(() => ck.info('model.layers.9.mlp.gate.weight')).toThrow(/"model\.layers\.9\.mlp\.gate\.weight"/);
    await expectCode(ck.read('model.layers.9.mlp.gate.weight'), 'MISSING_TENSOR', /model\.layers\.9\.mlp\.gate\.weight/);

    const noShard = { ...files };
    delete noShard['model-00002-of-00002.safetensors'];
    await expectCode(Checkpoint.open(memorySource(noShard, 'mem')), 'MISSING_FILE', /model-00002-of-00002\.safetensors/, /model\.safetensors\.index\.json/);

    const badIdx = { ...files, 'model.safetensors.index.json': new TextEncoder().encode('{"weight_map": 3}') };
    await expectCode(Checkpoint.open(memorySource(badIdx, 'mem')), 'BAD_INDEX', /weight_map/);
    const notJson = { ...files, 'model.safetensors.index.json': new TextEncoder().encode('{nope') };
    await expectCode(Checkpoint.open(memorySource(notJson, 'mem')), 'BAD_JSON', /index\.json/);

    // The index lists a tensor its shard lacks.
    const idx = JSON.parse(new TextDecoder().decode(files['model.safetensors.index.json']));
    idx.weight_map['ghost.weight'] = 'model-00001-of-00002.safetensors';
    const ghost = { ...files, 'model.safetensors.index.json': new TextEncoder().encode(JSON.stringify(idx)) };
    await expectCode(Checkpoint.open(memorySource(ghost, 'mem')), 'MISSING_TENSOR', /ghost\.weight/, /model-00001-of-00002/);

    await expectCode(Checkpoint.open(memorySource({ 'config.json': config }, 'empty')), 'MISSING_FILE', /model\.safetensors/);
    await expectCode(readConfig(memorySource({}, 'empty')), 'MISSING_FILE', /config\.json/);
  });

  it('urlDirSource: HEAD for existence, ranges for tensors', async () => {
    const { files, names } = await split();
    const log: string[] = [];
    const f = (async (url: string, init?: RequestInit) => {
      const name = decodeURIComponent(url.slice('http://h/m/'.length));
      const range = new Headers(init?.headers).get('Range');
      log.push(`${init?.method ?? 'GET'} ${name} ${range ?? ''}`.trim());
      const body = files[name];
      if (!body) return new Response(null, { status: 404 });
      if (init?.method === 'HEAD') return new Response(null, { status: 200 });
      const m = range && /^bytes=(\d+)-(\d+)$/.exec(range);
      if (m) return new Response(body.slice(Number(m[1]), Number(m[2]) + 1), { status: 206, headers: { 'Content-Range': `bytes ${m[1]}-${m[2]}/${body.byteLength}` } });
      return new Response(body.slice(), { status: 200 });
    }) as typeof fetch;
    const src: CheckpointSource = urlDirSource('http://h/m', { fetch: f });
    expect(await src.exists('nothing.json')).toBe(false);
    const ck = await Checkpoint.open(src);
    const before = log.length;
    await ck.read(names[0]);
    expect(log.slice(before)).toHaveLength(1);
    expect(log.slice(before)[0]).toMatch(/^GET model-0000[12]-of-00002\.safetensors bytes=\d+-\d+$/);
    expect((await ck.readConfig()).model_type).toBe('deepseek_v3');
  });
});
