#!/usr/bin/env node
// Fails when the source files of a package import each other in a circle.
// Walks the relative imports of every packages/*/src and apps/*/src file
// with the TypeScript parser and prints each circle once, as a path of files.
//
// An edge is an import that is evaluated when the module loads: a static
// `import` / `export ... from` with at least one value binding (or a bare
// `import './x.js'`). Not edges: `import type` / `export type` and imports
// whose every name is marked `type` (erased by the compiler), and dynamic
// `import('./x.js')` (run after both modules have loaded, e.g. the lazy
// `MoE` in ShardedMoE.fromHuggingFace). A type-only reference back to a
// module (ShardedMoE's source is typed `MoE`) is not a circle.
// Run by scripts/test.sh and `pnpm check:cycles`.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every .ts file (not .d.ts) under dir. */
function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|tsx)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The source file a relative specifier names ('./x.js' -> x.ts), or null for a package import. */
function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec);
  for (const cand of [base.replace(/\.(m?js|jsx)$/, (e) => (e === '.mjs' ? '.mts' : e === '.jsx' ? '.tsx' : '.ts')), base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(cand) && statSync(cand).isFile()) return cand;
  }
  throw new Error(`${relative(root, from)}: cannot resolve import '${spec}'`);
}

/** Whether an import/export declaration brings in no value (erased by the compiler). */
function typeOnly(node) {
  if (ts.isImportDeclaration(node)) {
    const c = node.importClause;
    if (!c) return false; // import './x.js': evaluated for its effects
    if (c.isTypeOnly) return true;
    const b = c.namedBindings;
    return !c.name && !!b && ts.isNamedImports(b) && b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
  }
  if (node.isTypeOnly) return true;
  const e = node.exportClause;
  return !!e && ts.isNamedExports(e) && e.elements.length > 0 && e.elements.every((x) => x.isTypeOnly);
}

/** The relative imports of one file that are evaluated when it loads, resolved to files. */
function importsOf(file) {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const specs = [];
  for (const node of sf.statements) {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) && !typeOnly(node)) {
      specs.push(node.moduleSpecifier.text);
    }
  }
  return [...new Set(specs.map((s) => resolveImport(file, s)).filter((f) => f !== null))];
}

/** The strongly connected components with more than one file (or a file importing itself): Tarjan's algorithm. */
function circles(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const connect = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return found;
}

/** One import path from a back to a (a file of the circle), for the message. */
function loopThrough(graph, scc) {
  const members = new Set(scc);
  const start = [...scc].sort()[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        for (let p = prev.get(v); p !== null && p !== undefined; p = prev.get(p)) path.unshift(p);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return scc;
}

const dirs = ['packages', 'apps'].flatMap((top) =>
  existsSync(join(root, top)) ? readdirSync(join(root, top)).map((p) => join(root, top, p, 'src')).filter((d) => existsSync(d)) : [],
);
const graph = new Map();
for (const dir of dirs) for (const f of sources(dir)) graph.set(f, importsOf(f));
const found = circles(graph);
if (found.length) {
  console.error(`check-cycles: ${found.length} import circle(s) in packages/*/src and apps/*/src:`);
  for (const scc of found) {
    console.error(`  ${loopThrough(graph, scc).map((f) => relative(root, f)).join(' -> ')}`);
    if (scc.length > 2) console.error(`    (files in this circle: ${scc.map((f) => relative(root, f)).sort().join(', ')})`);
  }
  process.exit(1);
}
console.log(`check-cycles: no import circles among ${graph.size} source files`);
