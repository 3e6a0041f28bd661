import { Checkpoint, readConfig, type CheckpointSource, type DType, type HostTensor } from '@webmoe/tensor';

/** The dtype (a table dtype, or the raw safetensors string for others such as `I64`) and shape of a checkpoint tensor, known before reading it. @example `{ dtype: 'bfloat16', shape: [8, 64] }` */
export interface CheckpointTensorInfo {
  dtype: DType | string;
  shape: readonly number[];
}

/**
 * What the HF MoE loader reads: the parsed `config.json` and named tensors,
 * with dtype and shape known before any data is read (so that bad
 * checkpoints fail before anything is allocated). {@link openHFCheckpoint}
 * builds one over `@webmoe/tensor`'s `Checkpoint`; tests and callers may
 * supply their own (e.g. a filtered view).
 *
 * @example
 * ```ts
 * const ck = await openHFCheckpoint(urlDirSource('https://host/olmoe-tiny/'));
 * ck.info('model.layers.0.mlp.gate.weight') // { dtype: 'float32', shape: [16, 64] }
 * ```
 */
export interface MoECheckpoint {
  /** Every tensor name of the checkpoint. */
  readonly tensorNames: readonly string[];
  /** The parsed config.json. */
  readonly config: unknown;
  /** dtype and shape of `name`, or undefined when absent. */
  info(name: string): CheckpointTensorInfo | undefined;
  /** Reads one tensor in its storage dtype. */
  read(name: string): Promise<HostTensor>;
  /** Reads one tensor's raw little-endian bytes (any safetensors dtype, e.g. `I64`); optional. */
  readRaw?(name: string): Promise<Uint8Array>;
  /** Closes the files it opened (absent when it owns none). */
  close?(): Promise<void>;
}

/**
 * Opens a HuggingFace checkpoint directory (`config.json` plus
 * `model.safetensors` or the shards of `model.safetensors.index.json`)
 * through `@webmoe/tensor`'s `Checkpoint` (headers only; each tensor is read
 * by its byte range). Missing or malformed files throw the tensor package's
 * `SafetensorsError` naming the file.
 *
 * @example
 * ```ts
 * import { dirSource } from '@webmoe/tensor/node';
 * const ck = await openHFCheckpoint(dirSource('/models/mixtral-tiny'));
 * ```
 */
export async function openHFCheckpoint(src: CheckpointSource | Checkpoint): Promise<MoECheckpoint> {
  const source = src instanceof Checkpoint ? src.source : src;
  const config = await readConfig(source);
  const ck = src instanceof Checkpoint ? src : await Checkpoint.open(source);
  return {
    tensorNames: ck.keys(),
    config,
    info: (name) => {
      if (!ck.has(name)) return undefined;
      const i = ck.info(name);
      return { dtype: i.dtype ?? i.stDtype, shape: i.shape };
    },
    read: (name) => ck.read(name),
    readRaw: async (name) => (await ck.readRaw(name)).bytes,
    // Close only a Checkpoint opened here; a caller's Checkpoint stays open.
    close: src instanceof Checkpoint ? undefined : () => ck.close(),
  };
}
