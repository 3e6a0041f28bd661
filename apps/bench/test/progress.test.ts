import { describe, expect, it } from 'vitest';
import { Progress } from '../src/progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, s: { isTTY, columns: 80, write: (x: string) => out.push(x) } };
}

describe('Progress', () => {
  it('plain lines when not a TTY', () => {
    const { out, s } = sink(false);
    const p = new Progress(2, s, false);
    p.start('a');
    p.tick('a done');
    p.log('note');
    p.tick('b done');
    p.done();
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(out.join('')).toMatch(/\[1\/2\] \d+s a done\n[\s\S]*note\n\[2\/2\] \d+s b done\n$/);
  });
  it('a bar redrawn in place on a TTY, within the terminal width', () => {
    const { out, s } = sink(true);
    const p = new Progress(4, s, true);
    p.tick('x'.repeat(200));
    p.tick('half');
    p.done();
    expect(out[0].startsWith('\r[######..................] 1/4')).toBe(true);
    expect(out[0].length).toBeLessThanOrEqual(80);
    expect(out[1]).toContain('[############............] 2/4');
    expect(out[out.length - 1]).toBe('\n');
  });
});
