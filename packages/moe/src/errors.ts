import { WebMoEError } from '@webmoe/tensor';

/**
 * A model config (HF `config.json` or MoE options) that is malformed or
 * describes something other than an MoE block (e.g. a dense layer). The
 * message names the field, what was expected and what came.
 *
 * @example
 * ```ts
 * try { await MoE.fromHuggingFace({ source: dir, layer: 0, device }); } catch (e) { if (e instanceof ConfigError) console.log(e.field); }
 * ```
 */
export class ConfigError extends WebMoEError {
  constructor(
    readonly field: string,
    expected: string,
    got: unknown,
  ) {
    super('BAD_CONFIG', `config ${field}: expected ${expected}, got ${typeof got === 'string' ? got : JSON.stringify(got)}`);
  }
}

/**
 * A checkpoint whose tensors disagree with the config: a missing or
 * unexpected tensor, a wrong shape or dtype. The message names the tensor.
 *
 * @example
 * ```ts
 * try { await MoE.fromHuggingFace({ source, layer: 0, device }); } catch (e) { if (e instanceof CheckpointError) console.log(e.tensor); }
 * ```
 */
export class CheckpointError extends WebMoEError {
  constructor(
    readonly tensor: string,
    expected: string,
    got: string,
  ) {
    super('BAD_CHECKPOINT', `checkpoint tensor ${tensor}: expected ${expected}, got ${got}`);
  }
}

/**
 * Something valid that this version does not do yet (an architecture, a
 * quantization method, expert parallelism). The message names the field.
 *
 * @example
 * ```ts
 * try { await MoE.fromHuggingFace({ source, layer: 0, device }); } catch (e) { if (e instanceof UnsupportedError) console.log(e.message); }
 * ```
 */
export class UnsupportedError extends WebMoEError {
  constructor(
    readonly field: string,
    what: string,
    supported: string,
  ) {
    super('UNSUPPORTED', `${field}: ${what} is not supported (supported: ${supported})`);
  }
}
