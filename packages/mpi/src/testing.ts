import { spawnSync } from 'node:child_process';

/** The launcher: `WEBMOE_MPIEXEC` (e.g. `mpirun.openmpi` where MPICH's is the default `mpiexec`), else `mpiexec`. @example `mpiexecCommand() // 'mpiexec'` */
export function mpiexecCommand(): string {
  return process.env.WEBMOE_MPIEXEC || 'mpiexec';
}

/** The launcher's `--version` output, or undefined when it is not on the PATH. @example `if (!mpiexecVersion()) console.log('no MPI')` */
export function mpiexecVersion(): string | undefined {
  // Open MPI refuses even --version as root without these
  const r = spawnSync(mpiexecCommand(), ['--version'], { encoding: 'utf8', env: { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' } });
  return r.error ? undefined : r.stdout + r.stderr;
}

/** What {@link launchMpi} saw: exit status, signal (set when the timeout killed mpiexec), output, the JSON lines of stdout, wall time. */
export interface MpiLaunch {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Every stdout line that starts with `{`, parsed. */
  lines: Record<string, any>[];
  ms: number;
}

/**
 * UCX settings for Node ranks (MPICH 4.0 on Debian runs over UCX): UCX's memory
 * hooks (mmap/malloc interception) made about 1 launch in 30 die with SIGSEGV
 * inside UCX's error handler next to V8's compiler; with them off, 0 in 40.
 * A caller's env overrides these; `moe-run` users can set the same variables.
 */
export const UCX_SAFE_ENV: Readonly<Record<string, string>> = { UCX_MEM_MMAP_HOOK_MODE: 'none', UCX_MEM_MALLOC_HOOKS: 'no' };

/**
 * Runs `mpiexec -n N node args...` ({@link mpiexecCommand}; tests and scripts): Open MPI gets
 * `--oversubscribe --allow-run-as-root` (it refuses more ranks than cores,
 * and root, without them); MPICH's hydra needs no flags.
 *
 * @example
 * ```ts
 * const r = launchMpi(2, ['rank-script.mjs'], { timeoutMs: 60_000 });
 * ```
 */
export function launchMpi(n: number, args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): MpiLaunch {
  const openMpi = /Open MPI|OpenRTE|open-mpi\.org/i.test(mpiexecVersion() ?? '');
  const env = { ...UCX_SAFE_ENV, ...opts.env };
  // Open MPI passes only OMPI_* variables to the ranks unless told: forward the ones given here with -x
  const extra = openMpi ? ['--oversubscribe', '--allow-run-as-root', ...Object.keys(env).flatMap((k) => ['-x', k])] : [];
  const t0 = Date.now();
  const r = spawnSync(mpiexecCommand(), [...extra, '-n', String(n), process.execPath, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, cwd: opts.cwd, env: { ...process.env, ...env } });
  const lines = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', lines, ms: Date.now() - t0 };
}

/**
 * Whether the MPI tests can run: false (skip, with the reason in the test
 * file) without mpiexec; throws under CI=true, where a missing MPI is a
 * setup defect. @example `describe.skipIf(!requireMpi())('mpiexec', ...)`
 */
export function requireMpi(): boolean {
  if (mpiexecVersion() !== undefined) return true;
  if (process.env.CI === 'true') throw new Error('mpiexec not found: CI needs an MPI implementation (scripts/setup-machine.sh installs mpich)');
  return false;
}
