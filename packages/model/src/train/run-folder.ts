// What protects a run folder (`train --out`, one variant folder of `ablate`): a used folder is refused without
// --resume or --force (trainer.ts), one training at a time holds `<out>/.lock` (its pid; a lock whose process is
// gone is stale and taken over), and temp files left by a killed writer (`*.tmp-<pid>`) are removed. What --resume
// may change is a property of each setting (`resume` in ./settings.ts, checked by checkResumeSettings).

import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import { flagOf } from './settings.ts';

export const RUN_FILES = ['last.safetensors', 'best.safetensors', 'metrics.jsonl'];

/** The folder already holds a run's checkpoint or metrics log. */
export function runFolderInUse(dir: string): boolean {
  return RUN_FILES.some((f) => existsSync(join(dir, f)));
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `<dir>/.lock` for this process; returns the release function. Refuses a lock held by a live process. */
export function acquireRunLock(dir: string): () => void {
  const lock = join(dir, '.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(lock, 'utf8').trim() === String(process.pid)) rmSync(lock, { force: true });
        } catch {
          /* gone already */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(lock, 'utf8').trim());
      } catch {
        continue; // released meanwhile
      }
      if (holder !== process.pid && alive(holder)) {
        throw new DataError(
          `${flagOf('outDir')} ${dir} is in use by another training (pid ${holder}, ${lock}): wait for it to finish or choose ` +
            `another ${flagOf('outDir')} ` +
            `(if no emofuse runs there, delete ${lock})`,
        );
      }
      rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  throw new DataError(`${flagOf('outDir')} ${dir}: cannot take the run lock ${lock}; delete it if no emofuse runs there`);
}

/** Removes `*.tmp-<pid>[suffix]` files of processes that no longer run (a kill mid-write). */
export function cleanOrphanedTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const f of readdirSync(dir)) {
    const m = /\.tmp-(\d+)(?:\.[A-Za-z0-9]+)?$/.exec(f);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}
