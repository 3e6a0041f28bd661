import { WebMoEError } from '@webmoe/tensor';

/**
 * A state dict that does not fit a module: keys missing from it, or keys the
 * module does not have. The message names the keys.
 *
 * @example
 * ```ts
 * try { mlp.loadStateDict(sd); } catch (e) { if (e instanceof StateDictError) console.log(e.missing, e.unexpected); }
 * ```
 */
export class StateDictError extends WebMoEError {
  /** Parameters of the module the state dict lacks. */
  readonly missing: readonly string[];
  /** Keys of the state dict the module does not have. */
  readonly unexpected: readonly string[];
  constructor(where: string, missing: readonly string[], unexpected: readonly string[]) {
    const parts: string[] = [];
    const fmt = (l: readonly string[]) => l.slice(0, 8).join(', ') + (l.length > 8 ? `, ... (${l.length} in all)` : '');
    if (missing.length) parts.push(`missing keys: ${fmt(missing)}`);
    if (unexpected.length) parts.push(`unexpected keys: ${fmt(unexpected)}`);
    super('STATE_DICT', `${where}: expected exactly the module's parameters; ${parts.join('; ')}`);
    this.missing = missing;
    this.unexpected = unexpected;
  }
}

/**
 * A module used before its weights were loaded, or on a device it was not
 * built for.
 *
 * @example
 * ```ts
 * try { await linear.forward(x); } catch (e) { if (e instanceof NotLoadedError) console.log(e.message); }
 * ```
 */
export class NotLoadedError extends WebMoEError {
  constructor(what: string) {
    super('NOT_LOADED', `${what}: expected loaded weights (call loadStateDict first), got none`);
  }
}
