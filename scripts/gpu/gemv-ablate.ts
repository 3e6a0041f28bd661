// Ablations of the row-blocked decode GEMV (diagnostics for gemv-bench --ablate, never results): each one rewrites
// the WGSL text of the `moe_gemv` modules before they compile, removing one part of the kernel's work while keeping
// the rest (and the loads the rest depends on), so that the time the kernel loses tells what that part costs:
//   decode  the codec's `dw` (bits -> f32 values) becomes one bitcast of the loaded word
//   x       the x loads (`X4[...]`) become a constant vector
//   scale   the block scale and zero-point loads (`sload*` / `zload*`) become a cheap function of the index
//   nan     the e4m3 NaN-word check (`nanw`) becomes 0
//   reduce  the workgroup reduction's serial sum over a group's 32 lanes reads one lane's value instead (what the
//           fixed-order reduction costs, barriers kept)
//   weights the weight-code loads (`W[...]`, row-blocked modules only) become their index as a vector: what is left
//           is the kernel's fixed work (expert lookup, x loads, decode, reduction, stores) without weight traffic
// The outputs of an ablated kernel are wrong by design: gemv-bench marks them and checks nothing.
// The transforms match the generator's text; `ablateWgsl` reports which ones matched, so that a run never times an
// unmodified kernel under an ablation's name (gemv-bench's self-check fails before timing anything).

export const ABLATIONS = ['decode', 'x', 'scale', 'nan', 'weights', 'reduce'] as const;
export type Ablation = (typeof ABLATIONS)[number];

/** Parses `decode+x` (or a comma list) into ablations; throws on an unknown name. */
export function parseAblations(spec: string): Ablation[] {
  const names = spec.split(/[+,]/).filter((s) => s);
  for (const n of names) if (!(ABLATIONS as readonly string[]).includes(n)) throw new Error(`--ablate: unknown ablation '${n}' (expected ${ABLATIONS.join(', ')}, joined by +)`);
  return names as Ablation[];
}

/** One ablation: the generator's text it rewrites (global regex) and the replacement. */
const REWRITES: Record<Ablation, { re: RegExp; to: (...m: string[]) => string }[]> = {
  decode: [
    {
      // fn dw(w: u32 | vec2<u32>, z: vec4<f32>) -> V8 | vec4<f32> { ... } (the codec body ends at a line holding only '}')
      re: /fn dw\(w: (u32|vec2<u32>), z: vec4<f32>\) -> (V8|vec4<f32>) \{\n[\s\S]*?\n\}/g,
      to: (_all, wt, rt) => {
        const f = `bitcast<f32>(w${wt === 'u32' ? '' : '.x'})`;
        return `fn dw(w: ${wt}, z: vec4<f32>) -> ${rt} {\n  let f = ${f};\n  return ${rt === 'V8' ? 'V8(vec4<f32>(f), vec4<f32>(f))' : 'vec4<f32>(f)'};\n}`;
      },
    },
  ],
  x: [{ re: /\bX4\[[^\]]*\]/g, to: () => 'vec4<f32>(0.5)' }],
  scale: [
    { re: /fn sload(\w*)\(i: u32\) -> f32 \{[^\n]*\}/g, to: (_all, fn) => `fn sload${fn}(i: u32) -> f32 { return f32(i & 1u) + 1.0; }` },
    { re: /fn zload(\w*)\(i: u32\) -> f32 \{[^\n]*\}/g, to: (_all, fn) => `fn zload${fn}(i: u32) -> f32 { return f32(i & 1u); }` },
  ],
  nan: [{ re: /fn nanw\(w: u32\) -> u32 \{[^\n]*\}/g, to: () => 'fn nanw(w: u32) -> u32 { return 0u; }' }],
  reduce: [
    {
      re: /for \(var i = 0u; i < 32u; i\+\+\) \{ sg \+= red\[b \+ i\];( su \+= red\[b \+ 32u \+ i\];)? \}/g,
      to: (_all, su) => `{ sg += red[b];${su ? ' su += red[b + 32u];' : ''} }`,
    },
  ],
  // W (or a chunk's W_c) is array<vec4<u32>> in the row-blocked modules (the only ones with `fn dw(`)
  weights: [{ re: /\bW(_\d+)?\[([^[\]]*)\]/g, to: (_all, _c, i) => `vec4<u32>(${i})` }],
};

/** Ablations that only apply to the row-blocked modules (their weight binding's type). */
const ROWS_ONLY: readonly Ablation[] = ['weights'];

/** The module text with the ablations applied, and the ablations that matched at least once. */
export function ablateWgsl(code: string, ablations: readonly Ablation[]): { code: string; applied: Ablation[] } {
  const applied: Ablation[] = [];
  let out = code;
  const rows = /\bfn dw\(/.test(code);
  for (const a of ablations) {
    if (ROWS_ONLY.includes(a) && !rows) continue;
    let hit = false;
    for (const r of REWRITES[a]) {
      out = out.replace(r.re, (...m) => {
        hit = true;
        return r.to(...(m.slice(0, -2) as string[]));
      });
    }
    if (hit) applied.push(a);
  }
  return { code: out, applied };
}

/**
 * Makes `device` compile every `moe_gemv` module with the ablations applied (others untouched) and records, per
 * module compiled, the ablations that matched; `log` is cleared by the caller between rows.
 */
export function installAblations(device: GPUDevice, ablations: readonly Ablation[], log: { label: string; applied: Ablation[] }[]): void {
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (desc: GPUShaderModuleDescriptor) => {
    if (desc.label !== 'moe_gemv') return create(desc);
    const { code, applied } = ablateWgsl(desc.code, ablations);
    log.push({ label: desc.label, applied });
    return create({ ...desc, code });
  };
}
