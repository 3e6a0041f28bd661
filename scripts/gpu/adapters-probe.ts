// Which GPUs can Dawn (the `webgpu` package) open on this machine? Prints
// every adapter it returns for each power preference, then tries to run two
// devices from distinct adapters at once.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const out: Record<string, unknown> = {};
for (const flags of [[], ['adapter=NVIDIA'], ['backend=vulkan']]) {
  const gpu = create(['enable-dawn-features=allow_unsafe_apis', ...flags]);
  const seen: string[] = [];
  for (const powerPreference of ['high-performance', 'low-power', undefined] as const) {
    const a = await gpu.requestAdapter(powerPreference ? { powerPreference } : undefined);
    const i = a?.info;
    seen.push(a ? `${powerPreference}: ${i?.vendor}/${i?.architecture}/${i?.device}/${i?.description}` : `${powerPreference}: none`);
  }
  out[JSON.stringify(flags)] = seen;
}
console.log(JSON.stringify(out, null, 1));
process.exit(0);
