#!/usr/bin/env node
// Writes src/version.ts (`export const VERSION = '<package.json version>'`)
// in each package, so a package's VERSION is read from its package.json and
// needs no JSON import (which browsers and bundlers treat differently).
// Each package's `build` runs it first; `pnpm version-packages` runs it
// after `changeset version`; `--check` (run by scripts/consumer-check.sh)
// fails when a committed src/version.ts differs from its package.json.
//   node scripts/version-file.mjs [--check] [package dirs...]   (default: every workspace package, or the current one)
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const check = args.includes('--check');
let dirs = args.filter((a) => a !== '--check');
if (dirs.length === 0) {
  const here = process.cwd();
  dirs =
    existsSync(join(here, 'package.json')) && here !== root
      ? [here]
      : ['packages', 'apps'].flatMap((g) => readdirSync(join(root, g)).map((d) => join(root, g, d))).filter((d) => existsSync(join(d, 'src')));
}

export const versionSource = (version) => `// Generated from package.json by scripts/version-file.mjs (run by \`build\`); do not edit.\nexport const VERSION = '${version}';\n`;

let stale = 0;
for (const dir of dirs) {
  const { name, version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = join(dir, 'src', 'version.ts');
  const want = versionSource(version);
  const have = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (have === want) continue;
  if (check) {
    console.error(`version-file: ${name}: src/version.ts does not say ${version} (run: node scripts/version-file.mjs)`);
    stale++;
  } else {
    writeFileSync(file, want);
    console.log(`version-file: ${name}: src/version.ts <- ${version}`);
  }
}
if (stale) process.exit(1);
