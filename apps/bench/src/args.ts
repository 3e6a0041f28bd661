/** Command-line options of the bench. */
import { BENCH_DTYPES, DEFAULT_MODELS, DEFAULT_TOKENS, MODELS, QUICK, findModel, type BenchDtype } from './models.js';

/** Which device to run on. */
export type DeviceChoice = 'auto' | 'gpu' | 'cpu';

/**
 * Device memory (GiB) a `--stack` chain's distinct layers may take by default, by adapter kind. The chain's weights
 * only have to be far beyond the L2 cache (50 MB on an H100 or H200) so that no layer finds its weights there; on a GPU
 * 48 GiB leaves an 80 GB card room for the rows beside the chain and the next model's weights (80 GiB, the default
 * before session 41, filled an H100 with 30 Mixtral layers and left the next model no room). Lavapipe: 1 GiB.
 */
export const STACK_BUDGET_GIB = { gpu: 48, software: 1 } as const;

/** Parsed options. */
export interface BenchOptions {
  models: string[];
  tokens: number[];
  /** Empty: each model's own dtypes (plus int4 with --peer onnxruntime). */
  dtypes: BenchDtype[];
  iters: number;
  warmup: number;
  /** Wall time of the GPU burn before each row's warm-up (`--warmup-ms`, default 300; not on software adapters): lets an idle GPU raise its clocks. */
  warmupMs: number;
  device: DeviceChoice;
  quick: boolean;
  json?: string;
  html?: string;
  compare?: string;
  peer?: 'onnxruntime';
  /** Layers per chain of the wallGpuMs / wallStackMs columns (`--stack`, default 48; 8 with --quick). */
  stack: number;
  /** `--profile-stages`: each GPU row also times every step of the forward (route, group, shared, gate_up, down, combine) with timestamp queries (src/stage-profile.ts). */
  profileStages?: boolean;
  /**
   * `--drain-each`: the timed forwards of a GPU row with timestamps each drained and read back before the next (the
   * bench's timing before session 24, for A/B runs) instead of back to back with one drain.
   */
  drainEach?: boolean;
  /** True when --stack was given. */
  stackExplicit?: boolean;
  /** Device memory (GiB) the chain's distinct layers may take (`--stack-gib`; default {@link STACK_BUDGET_GIB}). */
  stackGib?: number;
  /** Bytes of the copy-bandwidth probe (default: 256 MiB on a GPU, 32 MiB on lavapipe/CPU). */
  copyBytes?: number;
  /**
   * On a software adapter, each row's CPU-path twin beside it (impl 'cpu', the same weights). Unset: the CLI turns it on
   * for lavapipe (`--no-cpu-rows` off); runBench runs them only where it is true.
   */
  cpuRows?: boolean;
  help: boolean;
  /** True when --models, --tokens, --iters or --warmup were given (the CLI then never swaps in the quick set). */
  explicit: boolean;
}

/**
 * The options of `--quick`, keeping what was given explicitly: used when a
 * software adapter or the CPU would otherwise get the full real-size set.
 * @example `withQuickDefaults(parseArgs([]))`
 */
export function withQuickDefaults(o: BenchOptions): BenchOptions {
  return { ...o, quick: true, models: [...QUICK.models], tokens: [...QUICK.tokens], iters: 5, warmup: 1, stack: o.stackExplicit ? o.stack : 8 };
}

/** The usage text. */
export const USAGE = `webmoe bench: times the MoE layer on model shapes.

usage: pnpm bench [options]
  --quick               scaled-down shapes (${QUICK.models.join(', ')}), T=${QUICK.tokens.join(',')}
  --models a,b          models (${MODELS.map((m) => m.name).join(', ')}, tiny, <model>/s<N> scaled by 1/N, or <model>/e<N> with N routed experts)
  --tokens 1,16,...     token counts (default ${DEFAULT_TOKENS.join(',')})
  --dtypes bf16,fp8     weight dtypes (${BENCH_DTYPES.join(', ')}; default: each model's checkpoint dtypes, + int4 with --peer)
  --iters N             timed iterations per row (default 20; 5 with --quick)
  --warmup N            untimed iterations first (default 3; 1 with --quick); on a GPU at least N, then more until
                        the forwards stop getting faster (steps of >= 10 ms, at most 3 s)
  --warmup-ms M         keep the GPU busy M ms before each row (default 300): an idle GPU lowers its clocks
  --device auto|gpu|cpu auto (default): GPU, else lavapipe (its rows with the CPU path's beside them), else the CPU path
  --no-cpu-rows         on lavapipe, only its own rows (not the CPU path's beside them)
  --json FILE           write the results as JSON
  --html FILE           write a self-contained HTML report (charts as inline SVG)
  --compare FILE        another run's JSON (this bench's, or torch/torch_baseline.py's) beside ours
  --peer onnxruntime    also time onnxruntime-node's WebGPU QMoE (int4) on the same shapes
  --stack N             layers per chain of the wallGpuMs / wallStackMs columns (default 48; 8 with --quick)
  --stack-gib G         device memory the chain's distinct layers may take (default ${STACK_BUDGET_GIB.gpu} on a GPU, ${STACK_BUDGET_GIB.software} on lavapipe); the chain cycles over as many as fit
  --copy-mib N          size of each copy of the copy-bandwidth probe in MiB (default 1024 on a GPU, 32 on lavapipe)
  --profile-stages      per GPU row, device time of each forward step (route, group, shared, gate_up, down, combine; needs timestamp-query, else the row says so)
  --drain-each          time each forward alone, drained and read back before the next (the timing before session 24; A/B runs)
  -h, --help            this text`;

function list(v: string | undefined, flag: string): string[] {
  if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

function int(v: string | undefined, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer >= ${min}, got '${v}'`);
  return n;
}

/**
 * Parses argv (without node and the script).
 * @example `parseArgs(['--quick', '--json', 'out.json'])`
 */
export function parseArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = { models: [], tokens: [], dtypes: [], iters: -1, warmup: -1, warmupMs: 300, device: 'auto', quick: false, help: false, explicit: false, stack: -1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--quick': o.quick = true; break;
      case '--models': o.models = list(val(), flag); break;
      case '--tokens': o.tokens = list(val(), flag).map((s) => int(s, flag, 1)); break;
      case '--dtypes': {
        const ds = list(val(), flag);
        for (const d of ds) if (!(BENCH_DTYPES as readonly string[]).includes(d)) throw new Error(`--dtypes: unknown dtype '${d}' (${BENCH_DTYPES.join(', ')})`);
        o.dtypes = ds as BenchDtype[];
        break;
      }
      case '--iters': o.iters = int(val(), flag, 1); break;
      case '--warmup': o.warmup = int(val(), flag, 0); break;
      case '--warmup-ms': o.warmupMs = int(val(), flag, 0); break;
      case '--device': {
        const d = val();
        if (d !== 'auto' && d !== 'gpu' && d !== 'cpu') throw new Error(`--device: expected auto, gpu or cpu, got '${d}'`);
        o.device = d;
        break;
      }
      case '--json': o.json = list(val(), flag)[0]; break;
      case '--html': o.html = list(val(), flag)[0]; break;
      case '--compare': o.compare = list(val(), flag)[0]; break;
      case '--peer': {
        const p = val();
        if (p !== 'onnxruntime') throw new Error(`--peer: only 'onnxruntime' is known, got '${p}'`);
        o.peer = p;
        break;
      }
      case '--stack': o.stack = int(val(), flag, 1); o.stackExplicit = true; break;
      case '--stack-gib': {
        const g = Number(val());
        if (!(g > 0)) throw new Error(`--stack-gib: expected a positive number of GiB`);
        o.stackGib = g;
        break;
      }
      case '--profile-stages': o.profileStages = true; break;
      case '--drain-each': o.drainEach = true; break;
      case '--no-cpu-rows': o.cpuRows = false; break;
      case '--copy-mib': o.copyBytes = int(val(), flag, 1) * 1024 * 1024; break;
      case '-h': case '--help': o.help = true; break;
      default: throw new Error(`unknown option '${a}'\n\n${USAGE}`);
    }
  }
  o.explicit = o.models.length > 0 || o.tokens.length > 0 || o.iters >= 0 || o.warmup >= 0;
  if (!o.models.length) o.models = o.quick ? [...QUICK.models] : [...DEFAULT_MODELS];
  if (!o.tokens.length) o.tokens = o.quick ? [...QUICK.tokens] : [...DEFAULT_TOKENS];
  if (o.iters < 0) o.iters = o.quick ? 5 : 20;
  if (o.warmup < 0) o.warmup = o.quick ? 1 : 3;
  if (o.stack < 0) o.stack = o.quick ? 8 : 48;
  for (const m of o.models) findModel(m); // fail early on a typo
  return o;
}
