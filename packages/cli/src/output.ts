// Printing helpers shared by every command: aligned tables, a training progress bar, and user-facing errors
// without stack traces.

import cliProgress from 'cli-progress';
import { GpuUnavailableError, KernelError } from '@emofuse/kernels';
import type { TrainOptions } from '@emofuse/model';

/** Left-aligned columns; numbers right-aligned. */
export function table(rows: ReadonlyArray<ReadonlyArray<string | number>>, header?: readonly string[]): string {
  const all = header ? [header, ...rows] : rows;
  const cells = all.map((r) => r.map((c) => String(c)));
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length))) ?? [];
  const fmt = (r: string[], src: ReadonlyArray<string | number>) =>
    r
      .map((c, i) => (typeof src[i] === 'number' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const lines = cells.map((r, i) => fmt(r, all[i]!));
  if (header) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}

/** A cli-progress bar over steps with loss, rate and ETA (stderr, so --json stdout stays clean). */
export function stepBar(
  enabled: boolean,
  label: string,
  o: { json?: boolean; everySeconds?: number } = {},
): { onStep: TrainOptions['onStep']; stop: () => void; log: (s: string) => void } {
  if (!enabled || !process.stderr.isTTY) {
    // Not a terminal (a log file, CI, a pipe) or --json: one line (or JSON event) on stderr at a steady interval.
    if (!enabled && !o.json) return { onStep: undefined, stop: () => {}, log: (s) => console.error(s) };
    const every = (o.everySeconds ?? Number(process.env.EMOFUSE_PROGRESS_SECONDS ?? 30)) * 1000;
    const t0 = performance.now();
    let first = -1;
    let lastAt = t0;
    return {
      onStep: (s) => {
        if (first < 0) first = s.step - 1;
        const now = performance.now();
        if (now - lastAt < every) return;
        lastAt = now;
        const rate = (s.step - first) / ((now - t0) / 1000);
        const eta = rate > 0 ? (s.total - s.step) / rate : NaN;
        if (o.json) {
          console.error(
            JSON.stringify({
              event: 'progress',
              label,
              step: s.step,
              total: s.total,
              epoch: s.epoch + 1,
              loss: s.loss,
              stepsPerSecond: rate,
              etaSeconds: Math.round(eta),
            }),
          );
        } else {
          console.error(
            `${label}: step ${s.step}/${s.total}, epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}, ${rate.toFixed(2)} steps/s, ` +
              `ETA ${formatDuration(eta)}`,
          );
        }
      },
      stop: () => {},
      log: (s) => {
        if (!o.json) console.error(s);
      },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {value}/{total} steps | epoch {epoch} | loss {loss} | {rate} steps/s | ETA {etaText}`,
      stream: process.stderr,
      etaBuffer: 50,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const t0 = performance.now();
  let first = 0;
  return {
    onStep: (s) => {
      if (!started) {
        bar.start(s.total, s.step - 1, { epoch: s.epoch + 1, loss: '-', rate: '-', etaText: '-' });
        started = true;
        first = s.step - 1;
      }
      const rate = (s.step - first) / ((performance.now() - t0) / 1000);
      bar.update(s.step, {
        epoch: s.epoch + 1,
        loss: s.loss.toFixed(4),
        rate: rate.toFixed(2),
        etaText: formatDuration((s.total - s.step) / rate),
      });
    },
    stop: () => bar.stop(),
    log: (s) => (started ? process.stderr.write(`\r\x1b[2K${s}\n`) : console.error(s)),
  };
}

/** An error meant for the user: printed as is, exit code 2, no stack trace. */
export class UserError extends Error {
  override name = 'UserError';
}

export function reportError(err: unknown): number {
  const e = err as Error;
  if (e instanceof UserError || e instanceof GpuUnavailableError || e instanceof KernelError) {
    console.error(`emofuse: ${e.message}`);
    return 2;
  }
  if (e?.name === 'CommanderError') return (e as { exitCode?: number }).exitCode ?? 2;
  const fsMessage = fileSystemMessage(err);
  if (fsMessage) {
    console.error(`emofuse: ${fsMessage}`);
    return 2;
  }
  console.error(`emofuse: unexpected error: ${e?.message ?? String(err)}`);
  if (process.env.EMOFUSE_DEBUG) console.error(e?.stack);
  else console.error('(set EMOFUSE_DEBUG=1 to see the stack trace, and please report it)');
  return 1;
}

/** What the user can do about each file system error code (the path comes from the error). */
const FS_FIXES: Record<string, string> = {
  ENOENT: 'no such file or folder: check the path',
  EEXIST: 'a file is in the way where a folder is needed: choose another --out or remove that file',
  ENOTDIR: 'a part of the path is a file, not a folder: choose another --out (or path)',
  EISDIR: 'this is a folder where a file is needed: give a file path',
  EACCES: 'permission denied: choose a folder you can write to, or fix the permissions',
  EPERM: 'operation not permitted: choose a folder you can write to, or fix the permissions',
  EROFS: 'the file system is read-only: choose a writable --out',
  ENOSPC: 'the disk is full: free some space (or choose --out on another disk), then run the same command again to resume',
  EDQUOT: 'the disk quota is exceeded: free some space, then run the same command again to resume',
  EMFILE: 'too many open files: raise the limit (ulimit -n) and run again',
  ENAMETOOLONG: 'the path is too long: choose a shorter one',
  ELOOP: 'too many symbolic links in the path',
  EIO: 'an input/output error from the disk: check the device, then run again',
};

/** A user-facing message for a Node file system error (ENOENT, EACCES, ENOSPC, ...), or null for anything else. */
export function fileSystemMessage(err: unknown): string | null {
  const e = err as { code?: unknown; path?: unknown; dest?: unknown; syscall?: unknown };
  if (!e || typeof e.code !== 'string' || !(e.code in FS_FIXES)) return null;
  const where = typeof e.path === 'string' ? e.path : null;
  const what = typeof e.syscall === 'string' ? ` (${e.syscall}${typeof e.dest === 'string' ? ` -> ${e.dest}` : ''})` : '';
  return `${where ?? 'a file'}: ${e.code}${what}: ${FS_FIXES[e.code]}`;
}

/** Seconds as '42s', '7m05s' or '7h59m' (never '7h60m'); '-' when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const t = Math.round(seconds);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  const m = Math.round(t / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
