/**
 * Every subgroup-matrix tile shape's WGSL compiles on any adapter with shader-f16 and subgroups: the kernel with its
 * builtins emulated (SgmatShape shapes larger than the adapter's workgroup memory cannot run here, but their shader
 * modules still compile), for 16-bit weights staged over f16 x rows and packed ones over gathered x, each op. Catches
 * WGSL that only a 48 KiB GPU would otherwise compile (the 144- and 160-row shapes on lavapipe's 32 KiB), not numbers:
 * grouped-gemm-fast.gpu.test.ts runs the shapes that fit.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import type { GpuContext } from '@webmoe/kernels-wgsl';
import { testGpu } from '@webmoe/kernels-wgsl/testing';
import { SGMAT_SHAPES, type FastGemmVariant, type SgmatShapeName } from '../src/kernels/grouped-gemm-fast-shapes.js';
import { groupedGemmSgmatKernel } from '../src/kernels/grouped-gemm-sgmat-wgsl.js';
import { kernelModuleCode } from '../src/runtime/kernel.js';

let ctx: GpuContext | null;
beforeAll(async () => {
  ctx = await testGpu();
});

/** The variants compiled per shape: bf16 gate_up over staged f16 x rows (direct for xd shapes), int4 with zero points down over gathered x (f16 x rows for xo shapes). */
function variants(shape: SgmatShapeName): FastGemmVariant[] {
  const s = SGMAT_SHAPES[shape];
  const base = { interleaved: false, sd: 'none', bias: 'float32', h: false, xScale: true, emu: true, sg: shape } as const;
  const gateUp: FastGemmVariant = { ...base, op: 'gate_up', act: 'silu', wf: 'bfloat16', xmode: 'token', rowScale: false, xh: s.xd ? 'direct' : 'staged' };
  const down: FastGemmVariant = { ...base, op: 'down', act: 'none', wf: 'int4', sd: 'float16', zp: true, xmode: 'grouped', rowScale: false, ...(s.xd ? { xh: 'direct' as const } : s.xo ? { xh: 'staged' as const } : {}) };
  return [gateUp, down];
}

describe('subgroup-matrix GEMM: every tile shape compiles (builtins emulated)', () => {
  for (const shape of Object.keys(SGMAT_SHAPES) as SgmatShapeName[]) {
    it(shape, async (t) => {
      if (!ctx) return t.skip('no WebGPU adapter');
      if (!ctx.features.shaderF16 || !ctx.features.subgroups) return t.skip('no shader-f16 / subgroups on this adapter');
      for (const v of variants(shape)) {
        const code = kernelModuleCode(ctx, groupedGemmSgmatKernel, v);
        const module = ctx.device.createShaderModule({ code, label: `${shape} ${v.op}` });
        const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
        expect(errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`), `${shape} ${v.op} ${v.wf}`).toEqual([]);
      }
    });
  }
});
