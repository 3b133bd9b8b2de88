// Printing helpers shared by every command: aligned tables and user-facing errors without stack traces.

import { GpuUnavailableError, KernelError } from '@emofuse/kernels';

/** Left-aligned columns; numbers right-aligned. */
export function table(rows: ReadonlyArray<ReadonlyArray<string | number>>, header?: readonly string[]): string {
  const all = header ? [header, ...rows] : rows;
  const cells = all.map((r) => r.map((c) => String(c)));
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length))) ?? [];
  const fmt = (r: string[], src: ReadonlyArray<string | number>) =>
    r.map((c, i) => (typeof src[i] === 'number' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = cells.map((r, i) => fmt(r, all[i]!));
  if (header) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
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
  console.error(`emofuse: unexpected error: ${e?.message ?? String(err)}`);
  if (process.env.EMOFUSE_DEBUG) console.error(e?.stack);
  else console.error('(set EMOFUSE_DEBUG=1 to see the stack trace, and please report it)');
  return 1;
}
