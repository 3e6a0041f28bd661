import { ValueError } from '@webmoe/tensor';

/**
 * What {@link selectGpuFromEnv} did: the GPU index asked for, the PCI
 * address picked, and the environment variable set (or why nothing was set).
 */
export interface GpuSelection {
  index: number;
  /** `DDDD:BB:DD.F` of the picked display/3D controller, when found. */
  pci?: string;
  /** The variable set before Dawn loads, e.g. `DRI_PRIME=pci-0000_41_00_0`. */
  set?: string;
  /** Why nothing was set (already set by the user, fewer GPUs than the index, no sysfs). */
  note?: string;
}

/** The PCI addresses of display-class devices (class 0x03xxxx: VGA, 3D controller), sorted, from sysfs. */
function displayControllers(fs: typeof import('node:fs'), root: string): string[] {
  return fs
    .readdirSync(root)
    .filter((d) => {
      try {
        return fs.readFileSync(`${root}/${d}/class`, 'utf8').trim().startsWith('0x03');
      } catch {
        return false;
      }
    })
    .sort();
}

/**
 * Node, before Dawn creates its instance: with `WEBMOE_GPU_INDEX=i` (e.g. an
 * MPI rank's local rank; `moe-run --transport mpi` sets it), picks the i-th
 * display/3D controller in PCI order and sets `DRI_PRIME=pci-DDDD_BB_DD_F`,
 * the selector of Mesa's Vulkan device-select layer
 * (`VK_LAYER_MESA_device_select`), which then lists that device first. A
 * `DRI_PRIME` or `MESA_VK_DEVICE_SELECT` already set wins. Whether Dawn then
 * takes that device depends on the layer being installed and loaded for the
 * driver: **untested on a multi-GPU machine** (docs/DISTRIBUTED.md).
 * Returns undefined without `WEBMOE_GPU_INDEX`. `opts.pciRoot` replaces
 * `/sys/bus/pci/devices` (tests).
 *
 * @example
 * ```ts
 * process.env.WEBMOE_GPU_INDEX = '1';
 * const sel = await selectGpuFromEnv(); // { index: 1, pci: '0000:41:00.0', set: 'DRI_PRIME=pci-0000_41_00_0' }
 * ```
 */
export async function selectGpuFromEnv(env: Record<string, string | undefined> = process.env, opts: { pciRoot?: string } = {}): Promise<GpuSelection | undefined> {
  const v = env.WEBMOE_GPU_INDEX;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new ValueError('WEBMOE_GPU_INDEX', 'a non-negative integer (the GPU to use, in PCI order)', v);
  const index = Number(v);
  if (env.DRI_PRIME || env.MESA_VK_DEVICE_SELECT) return { index, note: `left as set: ${env.DRI_PRIME ? `DRI_PRIME=${env.DRI_PRIME}` : `MESA_VK_DEVICE_SELECT=${env.MESA_VK_DEVICE_SELECT}`}` };
  const spec = 'node:fs';
  let gpus: string[];
  try {
    gpus = displayControllers((await import(/* @vite-ignore */ spec)) as typeof import('node:fs'), opts.pciRoot ?? '/sys/bus/pci/devices');
  } catch (e) {
    return { index, note: `no PCI listing (${(e as Error).message.split('\n')[0]})` };
  }
  if (gpus.length === 0) return { index, note: 'no display/3D controller in /sys/bus/pci/devices (a software adapter such as lavapipe is used as is)' };
  if (index >= gpus.length) return { index, note: `only ${gpus.length} display/3D controller(s) (${gpus.join(', ')}): index ${index} left unselected, ranks share the default adapter` };
  const pci = gpus[index];
  const value = `pci-${pci.replace(/[:.]/g, '_')}`;
  env.DRI_PRIME = value;
  return { index, pci, set: `DRI_PRIME=${value}` };
}
