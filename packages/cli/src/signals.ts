// Ctrl-C / SIGTERM for long commands, and the checks every --out folder gets before work starts.

import { existsSync, statSync } from 'node:fs';
import { UserError } from './output.ts';

/**
 * The first SIGINT or SIGTERM aborts the returned signal with the signal's name as its reason (the command stops
 * at its next safe point, saves, says how to continue and exits with `signalExitCode`); a second one exits at once
 * with the same code. `dispose` removes the handlers.
 */
export function stopOnSignals(onFirst: () => void): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (ctl.signal.aborted) process.exit(signalExitCode(sig));
    ctl.abort(sig);
    onFirst();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: ctl.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** The exit code shells expect after a signal: 128 + its number (SIGTERM 143, SIGINT 130); `stop` is stopOnSignals' signal. */
export function signalExitCode(stop: AbortSignal | NodeJS.Signals): number {
  const sig = typeof stop === 'string' ? stop : stop.reason;
  return sig === 'SIGTERM' ? 143 : 130;
}

/** The command line as typed, with --resume added (and --force dropped): what continues an interrupted run. */
export function resumeCommand(argv: readonly string[]): string {
  const args = argv.filter((a) => a !== '--force');
  if (!args.includes('--resume')) args.push('--resume');
  return ['emofuse', ...args].map((a) => (/^[\w./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** --out must be a folder or not exist yet (a file there fails later with an unhelpful EEXIST/ENOTDIR). */
export function checkOutFolder(out: string, flag = '--out'): void {
  let dir = out;
  for (;;) {
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) {
        throw new UserError(
          dir === out
            ? `${flag} ${out} is a file, not a folder: choose another ${flag}`
            : `${flag} ${out}: ${dir} is a file, not a folder: choose another ${flag}`,
        );
      }
      return;
    }
    const up = dir.replace(/\/+[^/]+\/*$/, '');
    if (up === dir || up === '') return;
    dir = up;
  }
}
