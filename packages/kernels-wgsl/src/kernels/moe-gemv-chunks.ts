/**
 * The decode GEMV over several chunks of a chunked expert stack in ONE dispatch (GemvVariant.chunks = NC >= 2):
 * the chunks' buffers are bound side by side (W_0..W_{NC-1}, and their QS_c / QZ_c / B_c), each workgroup finds
 * the chunk holding its active expert and output block from per-chunk uniforms and runs that chunk's copy of the
 * one-chunk kernel's code (a workgroup-uniform branch). The copies are the one-chunk module's text with the
 * chunk's bindings, helper functions and uniforms renamed, so every output is computed by the same operations in
 * the same order as by the one-chunk dispatch of today (bit-identical results); a stack in one buffer, and a chunk
 * dispatched alone, keep the one-chunk variant, its WGSL and its dispatch unchanged.
 */
import { ValueError } from '@webmoe/tensor';
import type { BindingDecl, UniformField } from '../runtime/kernel.js';
import { uniformFields } from '../runtime/kernel.js';
import { EXPERT_SLOT_WGSL, GEMV_UNIFORMS, NO_EXPERT, gemvBindings, type GemvVariant } from './moe-gemv-snippets.js';

/** The one-chunk kernel's bindings that each chunk has its own of (the weights, their scales / zero points, the bias). */
const CHUNK_BINDINGS = ['W', 'QS', 'QZ', 'B'] as const;
/** The one-chunk kernel's uniforms that differ per chunk: weight rows, outputs, output offset, fp8 scale rows (s0). */
const CHUNK_UNIFORMS = ['rows', 'nout', 'yo', 's0'] as const;
/** Per chunk, where it sits in the dispatch: experts [eb, eb + ne) of the stack, output blocks [xb, xb + nx) of the grid. */
const CHUNK_PLACE = ['eb', 'ne', 'xb', 'nx'] as const;

/**
 * Most chunks one decode GEMV dispatch binds (bounds the uniform block and the generated code; the device's
 * maxStorageBuffersPerShaderStage usually bounds it first).
 */
export const GEMV_MAX_CHUNKS_PER_DISPATCH = 16;

/** The uniform field of chunk c for a one-chunk field or a placement field. @example `chunkField('rows', 2) // 'rows_2'` */
export function chunkField(name: string, c: number): string {
  return `${name}_${c}`;
}

/** The storage binding of chunk c for a one-chunk binding (W, QS, QZ, B). @example `chunkBinding('W', 0) // 'W_0'` */
export function chunkBinding(name: (typeof CHUNK_BINDINGS)[number], c: number): string {
  return `${name}_${c}`;
}

/** The multi-chunk GEMV's storage bindings: the shared ones of the one-chunk kernel, then each chunk's W, B, QS, QZ. */
export function chunkedGemvBindings(v: GemvVariant, nc: number): BindingDecl[] {
  const one = gemvBindings(v);
  const per = new Set<string>(CHUNK_BINDINGS);
  const shared = one.filter((b) => !per.has(b.name));
  const own = one.filter((b) => per.has(b.name));
  return [...shared, ...Array.from({ length: nc }, (_, c) => own.map((b) => ({ ...b, name: chunkBinding(b.name as (typeof CHUNK_BINDINGS)[number], c) }))).flat()];
}

/** The multi-chunk GEMV's uniforms: the one-chunk kernel's shared fields, then each chunk's placement and own fields. */
export function chunkedGemvUniforms(nc: number): UniformField[] {
  const per = new Set<string>([...CHUNK_UNIFORMS, 'eb', 'ne']);
  const shared = GEMV_UNIFORMS.filter((f) => !per.has(f.name));
  const perChunk = Array.from({ length: nc }, (_, c) => uniformFields('u32', ...[...CHUNK_PLACE, ...CHUNK_UNIFORMS].map((n) => chunkField(n, c)))).flat();
  return [...shared, ...perChunk];
}

/** A top-level WGSL function of a module: its name and its text [start, end). */
interface WgslFn {
  name: string;
  start: number;
  end: number;
}

/** The top-level functions (`fn name(` at a line start) of `src`, each up to its matching closing brace. */
function topLevelFns(src: string): WgslFn[] {
  const out: WgslFn[] = [];
  const re = /^fn ([A-Za-z_][A-Za-z0-9_]*)\(/gm;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let i = src.indexOf('{', m.index);
    let depth = 0;
    for (; i < src.length; i++) {
      if (src[i] === '{') depth++;
      else if (src[i] === '}' && --depth === 0) break;
    }
    if (depth !== 0) throw new ValueError(`multi-chunk GEMV: function ${m[1]}`, 'balanced braces', src.slice(m.index, m.index + 80));
    out.push({ name: m[1], start: m.index, end: i + 1 });
    re.lastIndex = i + 1;
  }
  return out;
}

/** A regex of any of `names` as a whole word (flags: 'g' to replace all). */
const word = (names: readonly string[], flags = '') => new RegExp(`\\b(${names.join('|')})\\b`, flags);

/**
 * The WGSL of the multi-chunk GEMV from the one-chunk module `one` (gemvKernel's source of the same variant
 * without `chunks`): the helper functions that read a chunk's bindings or uniforms (and those calling them)
 * copied once per chunk (`wload8` -> `wload8_c`), the main's prologue replaced by the chunk lookup, and its body
 * copied once per chunk under `if (chk == c)`, with the chunk's bindings (W -> W_c), helpers, uniforms
 * (u.rows -> u.rows_c) and its output block (wid.x -> wid.x - u.xb_c) renamed.
 */
export function chunkedGemvSource(one: string, nc: number): string {
  const at = one.indexOf('@compute');
  const slot = one.indexOf(EXPERT_SLOT_WGSL);
  if (at < 0 || slot < at || one.indexOf(EXPERT_SLOT_WGSL, slot + 1) >= 0) {
    throw new ValueError('multi-chunk GEMV source', 'one @compute main opening with the expert-slot prologue once', one.slice(0, 200));
  }
  const prefix = one.slice(0, at);
  const head = one.slice(at, slot);
  const rest = one.slice(slot + EXPERT_SLOT_WGSL.length);
  const close = rest.lastIndexOf('}');
  const body = rest.slice(0, close);
  const tail = rest.slice(close);
  // the helpers that read a chunk's bindings or uniforms, and (transitively) those that call them
  const fns = topLevelFns(prefix);
  const own = word(CHUNK_BINDINGS);
  const ownU = new RegExp(`\\bu\\.(${CHUNK_UNIFORMS.join('|')})\\b`);
  const perChunk = new Set(fns.filter((f) => own.test(prefix.slice(f.start, f.end)) || ownU.test(prefix.slice(f.start, f.end))).map((f) => f.name));
  for (let grew = true; grew; ) {
    grew = false;
    for (const f of fns) {
      if (perChunk.has(f.name) || perChunk.size === 0) continue;
      if (word([...perChunk]).test(prefix.slice(f.start, f.end))) {
        perChunk.add(f.name);
        grew = true;
      }
    }
  }
  const rename = (text: string, c: number) => {
    let t = text.replace(word(CHUNK_BINDINGS, 'g'), (n) => `${n}_${c}`);
    if (perChunk.size) t = t.replace(word([...perChunk], 'g'), (n) => `${n}_${c}`);
    return t.replace(new RegExp(`\\bu\\.(${CHUNK_UNIFORMS.join('|')})\\b`, 'g'), (_m, n: string) => `u.${chunkField(n, c)}`);
  };
  // the prefix without the per-chunk helpers, then their copies
  let shared = '';
  let from = 0;
  const copies: string[] = [];
  for (const f of fns) {
    if (!perChunk.has(f.name)) continue;
    shared += prefix.slice(from, f.start);
    from = f.end;
    const text = prefix.slice(f.start, f.end);
    for (let c = 0; c < nc; c++) copies.push(rename(text, c));
  }
  shared += prefix.slice(from);
  const C = Array.from({ length: nc }, (_, c) => c);
  const find = C.map((c) => {
    const [eb, ne, xb, nx] = CHUNK_PLACE.map((n) => `u.${chunkField(n, c)}`);
    return `if (e0 >= ${eb} && e0 - ${eb} < ${ne} && wid.x >= ${xb} && wid.x - ${xb} < ${nx}) { ch = ${c}u; }`;
  }).join(' else ');
  // the chunk of this workgroup's active expert and output block (none: NC), workgroup-uniform like its row count
  const prologue = `  let e0 = Active[wid.y];
  var ch = ${nc}u;
  if (e0 != ${NO_EXPERT}u) { ${find} }
  let mine = ch < ${nc}u;
  let eg = select(0u, e0, mine);
  let off = Offsets[eg];
  if (lid.x == 0u && lid.y == 0u) { wcnt = select(0u, Counts[eg], mine); wchk = ch; }
  let cnt = workgroupUniformLoad(&wcnt);
  // a workgroup of an empty slot, or of an expert or output block no chunk of this dispatch holds, leaves at once
  if (cnt == 0u) { return; }
  let chk = workgroupUniformLoad(&wchk);`;
  const branches = C.map((c) => {
    const b = rename(body, c).replace(/\bwid\.x\b/g, 'wx');
    return `${c ? ' else ' : '  '}if (chk == ${c}u) {
  let e = eg - u.${chunkField('eb', c)};
  let wx = wid.x - u.${chunkField('xb', c)};${b}}`;
  }).join('');
  return `${shared}var<workgroup> wchk: u32;\n${copies.join('\n')}\n${head}${prologue}\n${branches}\n${tail}`;
}

/** One chunk of a stack as the GEMV dispatches it: experts [e0, e0 + experts), outputs [o0, o0 + outputs). */
export interface GemvChunkPlace {
  e0: number;
  experts: number;
  o0: number;
  outputs: number;
}

/** One multi-chunk dispatch: its chunks (indices into the stack's, padded to NC by repeating the last with no experts), their first output blocks, and the grid's output blocks. */
export interface GemvChunkGroup {
  chunks: number[];
  /** Per slot of the group: the first output block of its chunk in the grid (chunks of the same outputs share blocks). */
  xb: number[];
  /** Per slot: output blocks of its chunk (0 for a padding slot). */
  nx: number[];
  /** Per slot: whether it is padding (bound to the last chunk's buffers, holding no expert). */
  pad: boolean[];
  /** Output blocks of the grid. */
  blocks: number;
}

/**
 * How the chunks of a stack group into multi-chunk dispatches of at most `perDispatch` chunks each: as few
 * dispatches as that allows, all of the same size NC (the last padded), so that one pipeline serves them all.
 * Within a dispatch the output blocks of each distinct output range (a split expert's pieces) follow each other;
 * chunks of whole experts share blocks [0, ceil(outputs / perWg)). `perDispatch` < 2: null (one dispatch per
 * chunk, the one-chunk kernel).
 *
 * @example
 * ```ts
 * planGemvChunkGroups(11 whole-expert chunks, 8, 10) // two dispatches of NC = 6, the second with one padding slot
 * ```
 */
export function planGemvChunkGroups(chunks: readonly GemvChunkPlace[], perWg: number, perDispatch: number): { nc: number; groups: GemvChunkGroup[] } | null {
  const n = chunks.length;
  const most = Math.min(perDispatch, GEMV_MAX_CHUNKS_PER_DISPATCH, n);
  if (n < 2 || most < 2) return null;
  const count = Math.ceil(n / most);
  const nc = Math.ceil(n / count);
  const groups: GemvChunkGroup[] = [];
  for (let i0 = 0; i0 < n; i0 += nc) {
    const real = Array.from({ length: Math.min(nc, n - i0) }, (_, j) => i0 + j);
    // output ranges of the group in order of their first output, each taking its blocks of the grid
    const starts = [...new Set(real.map((i) => chunks[i].o0))].sort((a, b) => a - b);
    const base = new Map<number, number>();
    let blocks = 0;
    for (const o0 of starts) {
      base.set(o0, blocks);
      blocks += Math.max(...real.filter((i) => chunks[i].o0 === o0).map((i) => Math.ceil(chunks[i].outputs / perWg)));
    }
    const last = real[real.length - 1];
    const slots = Array.from({ length: nc }, (_, j) => real[j] ?? last);
    const pad = slots.map((_, j) => j >= real.length);
    groups.push({
      chunks: slots,
      xb: slots.map((i, j) => (pad[j] ? 0 : base.get(chunks[i].o0)!)),
      nx: slots.map((i, j) => (pad[j] ? 0 : Math.ceil(chunks[i].outputs / perWg))),
      pad,
      blocks,
    });
  }
  return { nc, groups };
}
