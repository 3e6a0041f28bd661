// The device of the subgroup-matrix probes (sgmat-peak.mjs, sgmat-load-probe.mjs): Dawn with f16 on NVIDIA and
// unquantized timestamps, the high-performance adapter with shader-f16, subgroups, subgroup matrices and timestamp
// queries (else the process exits 1) and its whole workgroup memory; plus the f16 bits of the small integers the
// probes multiply. Copy it into the kit beside the probes: cp scripts/gpu/sgmat-*.mjs .gpu-kit/
import { create, globals } from 'webgpu';
import { writeSync } from 'node:fs';

/** Writes one line to stdout at once (unbuffered, so that a killed run keeps what it printed). */
export const log = (...a) => writeSync(1, a.join(' ') + '\n');

const KEEP = []; // the Dawn instance must outlive its devices

/** The probes' device (see the file comment); prints the adapter. */
export async function sgmatProbeDevice() {
  Object.assign(globalThis, globals);
  const gpu = create(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia', 'disable-dawn-features=timestamp_quantization']);
  KEEP.push(gpu);
  const ad = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const need = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'];
  const missing = need.filter((f) => !ad.features.has(f));
  if (missing.length) {
    log('adapter lacks', missing.join(', '));
    process.exit(1);
  }
  const d = await ad.requestDevice({ requiredFeatures: need, requiredLimits: { maxComputeWorkgroupStorageSize: ad.limits.maxComputeWorkgroupStorageSize } });
  log('adapter', [ad.info?.vendor, ad.info?.architecture, ad.info?.device, ad.info?.description].filter(Boolean).join(' / '));
  return d;
}

/** f32 -> f16 bits of a small integer (exact: normal f16 values, no rounding needed). */
export function f16Bits(x) {
  if (x === 0) return 0;
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u >>> 16) & 0x8000) | ((((u >>> 23) & 0xff) - 112) << 10) | ((u >>> 13) & 0x3ff);
}

/** The first compile error of shader `code` on `d` (whitespace folded), or the module when it compiled. */
export async function compileProbe(d, code) {
  const module = d.createShaderModule({ code });
  const err = (await module.getCompilationInfo()).messages.find((x) => x.type === 'error');
  return err ? { error: err.message.replace(/\s+/g, ' ') } : { module };
}

/**
 * One compute pass of pipeline `p` over `groups` workgroups with bindings [inBuf, out], timed with timestamp queries:
 * the pass's GPU time in ms and the first `outBytes` of `out` as f32.
 */
export async function runProbePass(d, p, inBuf, out, outBytes, groups) {
  const bg = d.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [inBuf, out].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const qs = d.createQuerySet({ type: 'timestamp', count: 2 });
  const res = d.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const rd = d.createBuffer({ size: 16 + outBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const e = d.createCommandEncoder();
  const ps = e.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
  ps.setPipeline(p);
  ps.setBindGroup(0, bg);
  ps.dispatchWorkgroups(groups);
  ps.end();
  e.resolveQuerySet(qs, 0, 2, res, 0);
  e.copyBufferToBuffer(res, 0, rd, 0, 16);
  e.copyBufferToBuffer(out, 0, rd, 16, outBytes);
  d.queue.submit([e.finish()]);
  await rd.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(rd.getMappedRange(0, 16).slice(0));
  const values = new Float32Array(rd.getMappedRange(16).slice(0));
  rd.unmap();
  for (const b of [rd, res]) b.destroy();
  qs.destroy();
  return { ms: Number(t[1] - t[0]) / 1e6, out: values };
}
