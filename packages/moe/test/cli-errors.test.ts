// moe-run on broken inputs: exit 1, one line naming the file (or both widths), no stack, nothing written.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor } from '@webmoe/tensor';
import { writeSafetensorsFile } from '@webmoe/tensor/node';
import { FIXTURES } from './helpers.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'dist', 'cli.js');
const ARCH = 'mixtral';
const H = (JSON.parse(readFileSync(join(FIXTURES, ARCH, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
const INPUT = join(FIXTURES, ARCH, 'golden.safetensors');
let work: string;

beforeAll(() => {
  // The CLI runs from dist, as `pnpm exec moe-run` does (same as cli.test.ts).
  execFileSync(join(pkg, 'node_modules', '.bin', 'tsc'), ['-b'], { cwd: pkg, stdio: 'pipe' });
  work = mkdtempSync(join(tmpdir(), 'moe-run-err-'));
}, 300_000);

/** A copy of the fixture checkpoint that `damage` may break. */
function checkpoint(name: string, damage: (dir: string) => void): string {
  const dir = join(work, name);
  cpSync(join(FIXTURES, ARCH), dir, { recursive: true });
  chmodSync(dir, 0o755); // the fixtures are read-only
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  damage(dir);
  return dir;
}

/** Runs moe-run into a fresh output directory and checks the failure contract; returns stderr. */
function fails(args: { checkpoint: string; input?: string; extra?: string[] }): string {
  const outDir = mkdtempSync(join(work, 'out-'));
  const out = join(outDir, 'y.safetensors');
  const r = spawnSync(process.execPath, [cli, '--checkpoint', args.checkpoint, '--layer', '0', '--input', args.input ?? INPUT, '--output', out, '--device', 'cpu', ...(args.extra ?? [])], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  expect(r.status, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1); // one line, no stack without --verbose
  expect(lines[0]).toMatch(/^moe-run: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(outDir)).toEqual([]); // no temporary file left behind either
  return lines[0];
}

describe('moe-run failures', () => {
  it('a truncated checkpoint: names model.safetensors', () => {
    const dir = checkpoint('truncated', (d) => {
      const f = join(d, 'model.safetensors');
      truncateSync(f, Math.floor(statSync(f).size / 2));
    });
    const msg = fails({ checkpoint: dir });
    expect(msg).toContain(join(dir, 'model.safetensors'));
    expect(msg).toMatch(/SafetensorsError: .*(truncated|past the end|shorter)/i);
  });

  it('a garbage safetensors header: names the file and says the header is bad', () => {
    const dir = checkpoint('garbage', (d) => {
      const body = Buffer.from('{"gate.weight": not json at all');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(body.length));
      writeFileSync(join(d, 'model.safetensors'), Buffer.concat([len, body, Buffer.alloc(64)]));
    });
    const msg = fails({ checkpoint: dir });
    expect(msg).toContain(join(dir, 'model.safetensors'));
    expect(msg).toMatch(/SafetensorsError: .*header/i);
  });

  it('a header length larger than the file: names the file', () => {
    const dir = checkpoint('huge-header', (d) => {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(1n << 40n);
      writeFileSync(join(d, 'model.safetensors'), Buffer.concat([len, Buffer.from('{}')]));
    });
    expect(fails({ checkpoint: dir })).toContain(join(dir, 'model.safetensors'));
  });

  it('an input of the wrong width: names both widths', async () => {
    const input = join(work, 'wide.safetensors');
    await writeSafetensorsFile(input, { input: HostTensor.fromFloat32([3, H + 5], new Float32Array(3 * (H + 5)).fill(0.5)) });
    const msg = fails({ checkpoint: join(FIXTURES, ARCH), input });
    expect(msg).toContain(String(H));
    expect(msg).toContain(String(H + 5));
    expect(msg).toMatch(/ShapeError: .*expected shape \[T, \d+\], got \[3, \d+\]/);
  });

  it('a corrupt input file: names the input file', () => {
    const input = join(work, 'corrupt-input.safetensors');
    writeFileSync(input, Buffer.from([1, 2, 3]));
    expect(fails({ checkpoint: join(FIXTURES, ARCH), input })).toContain(input);
  });

  it('a corrupt config.json: names config.json', () => {
    const dir = checkpoint('bad-config', (d) => writeFileSync(join(d, 'config.json'), '{"model_type": "mixtral", '));
    expect(fails({ checkpoint: dir })).toMatch(/config\.json/);
  });

  it('--verbose adds the stack, still exit 1 and nothing written', () => {
    const dir = checkpoint('truncated-v', (d) => truncateSync(join(d, 'model.safetensors'), 100));
    const out = join(work, 'v.safetensors');
    const r = spawnSync(process.execPath, [cli, '--checkpoint', dir, '--layer', '0', '--input', INPUT, '--output', out, '--device', 'cpu', '--verbose'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  });
});
