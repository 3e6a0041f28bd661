// WEBMOE_GPU_INDEX -> DRI_PRIME (Mesa device-select) on a fake sysfs PCI listing: the i-th display/3D
// controller in PCI order, a user's DRI_PRIME left alone, an index past the GPUs and bad values.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValueError } from '@webmoe/tensor';
import { selectGpuFromEnv } from '../src/runtime/gpu-select.js';

function fakePci(devs: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'pci-'));
  for (const [addr, cls] of Object.entries(devs)) {
    mkdirSync(join(root, addr));
    writeFileSync(join(root, addr, 'class'), cls + '\n');
  }
  return root;
}
// two 3D controllers (0x0302, e.g. H200), one VGA (0x0300), a NIC and a bridge, listed out of order
const pciRoot = fakePci({ '0000:c1:00.0': '0x030200', '0000:00:01.0': '0x060400', '0000:41:00.0': '0x030200', '0000:03:00.0': '0x030000', '0000:02:00.0': '0x020000' });

describe('selectGpuFromEnv', () => {
  it('picks the i-th display/3D controller in PCI order and sets DRI_PRIME', async () => {
    const want = ['0000:03:00.0', '0000:41:00.0', '0000:c1:00.0'];
    for (let i = 0; i < 3; i++) {
      const env: Record<string, string | undefined> = { WEBMOE_GPU_INDEX: String(i) };
      const s = await selectGpuFromEnv(env, { pciRoot });
      expect(s).toEqual({ index: i, pci: want[i], set: `DRI_PRIME=pci-${want[i].replace(/[:.]/g, '_')}` });
      expect(env.DRI_PRIME).toBe(`pci-${want[i].replace(/[:.]/g, '_')}`);
    }
  });
  it('leaves a user DRI_PRIME / MESA_VK_DEVICE_SELECT, an index past the GPUs, and no index alone', async () => {
    const user = { WEBMOE_GPU_INDEX: '1', DRI_PRIME: '1' };
    expect((await selectGpuFromEnv(user, { pciRoot }))!.note).toMatch(/left as set: DRI_PRIME=1/);
    expect(user.DRI_PRIME).toBe('1');
    const past: Record<string, string | undefined> = { WEBMOE_GPU_INDEX: '3' };
    expect((await selectGpuFromEnv(past, { pciRoot }))!.note).toMatch(/only 3 display\/3D controller/);
    expect(past.DRI_PRIME).toBeUndefined();
    expect(await selectGpuFromEnv({}, { pciRoot })).toBeUndefined();
    const none: Record<string, string | undefined> = { WEBMOE_GPU_INDEX: '0' };
    expect((await selectGpuFromEnv(none, { pciRoot: fakePci({ '0000:00:01.0': '0x060400' }) }))!.note).toMatch(/no display\/3D controller/);
    expect(none.DRI_PRIME).toBeUndefined();
  });
  it('a bad index is a ValueError', async () => {
    await expect(selectGpuFromEnv({ WEBMOE_GPU_INDEX: 'one' }, { pciRoot })).rejects.toThrow(ValueError);
    await expect(selectGpuFromEnv({ WEBMOE_GPU_INDEX: '-1' }, { pciRoot })).rejects.toThrow(/non-negative integer/);
  });
});
