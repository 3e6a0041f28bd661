import { spawnSync } from 'node:child_process';

/** `mpiexec --version`'s output, or undefined when no mpiexec is on the PATH. @example `if (!mpiexecVersion()) console.log('no MPI')` */
export function mpiexecVersion(): string | undefined {
  const r = spawnSync('mpiexec', ['--version'], { encoding: 'utf8' });
  return r.error ? undefined : r.stdout + r.stderr;
}

/** What {@link launchMpi} saw: exit status, signal (set when the timeout killed mpiexec), output, the JSON lines of stdout, wall time. */
export interface MpiLaunch {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Every stdout line that starts with `{`, parsed. */
  lines: Record<string, any>[];
  ms: number;
}

/**
 * Runs `mpiexec -n N node args...` (tests and scripts): Open MPI gets
 * `--oversubscribe --allow-run-as-root` (it refuses more ranks than cores,
 * and root, without them); MPICH's hydra needs no flags.
 *
 * @example
 * ```ts
 * const r = launchMpi(2, ['rank-script.mjs'], { timeoutMs: 60_000 });
 * ```
 */
export function launchMpi(n: number, args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): MpiLaunch {
  const extra = mpiexecVersion()?.includes('Open MPI') ? ['--oversubscribe', '--allow-run-as-root'] : [];
  const t0 = Date.now();
  const r = spawnSync('mpiexec', [...extra, '-n', String(n), process.execPath, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, cwd: opts.cwd, env: { ...process.env, ...opts.env } });
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
