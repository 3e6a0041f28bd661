/**
 * What the decode GEMV's WGSL generator (moe-gemv-kernel.ts, moe-gemv-rows.ts, moe-gemv-snippets.ts) is given and
 * gives back so that moe-gemv-chunks.ts can generate one copy of its code per chunk of a multi-chunk dispatch:
 * the names it emits for what a chunk has its own of (GemvNames; GEMV_NAMES for the one-chunk kernel), and the
 * module in parts (GemvModule), its declarations marked shared or the chunk's own.
 */

/** The bindings each chunk of a multi-chunk GEMV has its own of: its weights, their scales and zero points, its bias. */
export const GEMV_CHUNK_BINDINGS = ['W', 'QS', 'QZ', 'B'] as const;
/** The uniform fields each chunk of a multi-chunk GEMV has its own of: weight rows, outputs, output offset, fp8 scale rows (s0). */
export const GEMV_CHUNK_UNIFORMS = ['rows', 'nout', 'yo', 's0'] as const;

/**
 * The names the GEMV's WGSL generator emits for what a chunk of a multi-chunk dispatch has its own of
 * (moe-gemv-chunks.ts generates one copy per chunk with that chunk's names): its bindings and uniform fields
 * (GEMV_CHUNK_BINDINGS, GEMV_CHUNK_UNIFORMS), the suffix `fn` of the helper functions that read them (wload8,
 * wscale, srow, bload, ...), and `block`, the expression of the workgroup's output block in the chunk's grid.
 */
export type GemvNames = Record<(typeof GEMV_CHUNK_BINDINGS)[number] | (typeof GEMV_CHUNK_UNIFORMS)[number], string> & { fn: string; block: string };

/** The names of the one-chunk kernel (one weight container per dispatch): the declared bindings and uniforms themselves. */
export const GEMV_NAMES: GemvNames = { W: 'W', QS: 'QS', QZ: 'QZ', B: 'B', rows: 'rows', nout: 'nout', yo: 'yo', s0: 's0', fn: '', block: 'wid.x' };

/** A piece of a GEMV module's declarations: the same in every chunk's copy, or (own) one helper function of the chunk's own. */
export interface GemvPiece {
  text: string;
  own: boolean;
}

/**
 * A GEMV module's WGSL as the generator makes it for one set of names: the declarations before main, main's
 * opening up to the expert-slot prologue (EXPERT_SLOT_WGSL, not included), main's body after it, and the text
 * from main's closing brace on. The body and the own pieces are the chunk's; the rest is the same for every chunk.
 */
export interface GemvModule {
  decls: GemvPiece[];
  head: string;
  body: string;
  tail: string;
}

/** One helper function of the chunk's own, as a piece ('' : none). */
export function ownFn(text: string): GemvPiece[] {
  return text ? [{ text, own: true }] : [];
}

/**
 * Declarations from a template: its text and interpolated strings are shared pieces, interpolated pieces are kept
 * as they are (adjacent shared text merged). @example wgslDecls`struct W8 { ... }\n${ownFn(bload)}\n`
 */
export function wgslDecls(strings: TemplateStringsArray, ...vals: Array<string | number | boolean | GemvPiece[]>): GemvPiece[] {
  const out: GemvPiece[] = [];
  const add = (text: string, own: boolean) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && !last.own && !own) last.text += text;
    else out.push({ text, own });
  };
  strings.forEach((s, i) => {
    add(s, false);
    if (i >= vals.length) return;
    const x = vals[i];
    if (typeof x === 'object') for (const p of x) add(p.text, p.own);
    else add(String(x), false);
  });
  return out;
}
