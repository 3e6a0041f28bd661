/**
 * Node-only helpers of @webmoe/moe (file system access). The main entry
 * stays browser-safe and loads this module only when given a directory path.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointFiles } from './checkpoint.js';

/**
 * Checkpoint files from a local directory.
 *
 * @example
 * ```ts
 * import { filesFromDir } from '@webmoe/moe/node';
 * const moe = await MoE.fromHuggingFace({ source: filesFromDir('/models/olmoe-tiny'), layer: 0 });
 * ```
 */
export function filesFromDir(dir: string): CheckpointFiles {
  return {
    where: dir.endsWith('/') ? dir : dir + '/',
    readFile: async (p) => {
      try {
        return new Uint8Array(await readFile(join(dir, p)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };
}
