// What protects a run folder (`train --out`, one variant folder of `ablate`): a used folder is refused without
// --resume or --force, one training at a time holds `<out>/.lock` (its pid; a lock whose process is gone is
// stale and taken over), temp files left by a killed writer (`*.tmp-<pid>`) are removed, and --resume compares
// every stored training flag with the given ones (only those that cannot change what was already computed may
// differ: --epochs upward, --patience, --save-every).

import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './data.ts';
import type { TrainOptions } from './trainer.ts';
import { DEFAULT_FUSION } from '../fusion/model.ts';
import { TRAIN_DEFAULTS } from './defaults.ts';

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
          `--out ${dir} is in use by another training (pid ${holder}, ${lock}): wait for it to finish or choose another --out ` +
            `(if no emofuse runs there, delete ${lock})`,
        );
      }
      rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  throw new DataError(`--out ${dir}: cannot take the run lock ${lock}; delete it if no emofuse runs there`);
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

/** Every training flag that shapes the run, as stored in its checkpoints. */
export type TrainFlagsRecord = Record<string, string | number | boolean | null>;

const FLAG_NAMES: Record<string, string> = {
  fusion: '--fusion', width: '--width', heads: '--heads', layers: '--layers', ffnMult: '--ffn-mult', dropout: '--dropout',
  blockDropout: '--block-dropout', linearSkip: '--linear-skip', seed: '--seed', standardize: '--no-standardize', epochs: '--epochs', batchSize: '--batch-size', lr: '--lr',
  minLr: '--min-lr', warmup: '--warmup', decay: '--decay', weightDecay: '--weight-decay', labelSmoothing: '--label-smoothing', maxGradNorm: '--max-grad-norm', patience: '--patience',
  classWeights: '--class-weights', maxTextLen: '--max-text-len', maxAudioLen: '--max-audio-len', trainSplit: '--train-split', devSplit: '--dev-split',
  saveEvery: '--save-every',
};
/** Flags that may differ on --resume: they do not change any step already taken. */
const FREE = new Set(['patience', 'saveEvery']);

export function storedFlags(o: TrainOptions, trainSplit: string, devSplit: string): TrainFlagsRecord {
  const M = { ...DEFAULT_FUSION, ...o.model };
  const T = TRAIN_DEFAULTS;
  const cw = o.classWeights ?? T.classWeights;
  return {
    fusion: M.fusion, width: M.width, heads: M.heads, layers: M.layers, ffnMult: M.ffnMult, dropout: M.dropout, blockDropout: M.blockDropout ?? null,
    linearSkip: M.linearSkip ?? false,
    seed: M.seed, standardize: o.standardize ?? T.standardize, epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, minLr: o.minLr ?? T.minLr,
    warmup: o.warmup ?? null, decay: o.decay ?? T.decay, weightDecay: o.weightDecay ?? T.weightDecay, labelSmoothing: o.labelSmoothing ?? T.labelSmoothing, maxGradNorm: o.maxGradNorm ?? T.maxGradNorm,
    patience: o.patience ?? T.patience, classWeights: Array.isArray(cw) ? cw.join(',') : cw, maxTextLen: o.maxTextLen ?? null,
    maxAudioLen: o.maxAudioLen ?? null, trainSplit, devSplit, saveEvery: o.saveEvery ?? T.saveEvery,
  };
}

/**
 * Refuses a --resume whose flags would change the run: names each flag, the stored value and the given one.
 * --epochs may grow (not below the epochs already done). A checkpoint from before flags were stored is not checked.
 */
export function checkResumeFlags(stored: TrainFlagsRecord | undefined, given: TrainFlagsRecord, from: string, step: number, trainSize: number): void {
  if (!stored) return;
  const show = (k: string, v: unknown) => (v === null || v === undefined ? '(default)' : k === 'standardize' || k === 'linearSkip' ? (v ? 'on' : 'off') : String(v));
  const diffs: string[] = [];
  for (const k of Object.keys(FLAG_NAMES)) {
    if (FREE.has(k) || !(k in stored)) continue;
    const a = stored[k];
    const b = given[k] ?? null;
    if (k === 'epochs') {
      const done = Math.floor(step / Math.ceil(trainSize / Number(stored.batchSize)));
      if (Number(b) < done) diffs.push(`--epochs ${b} is below the ${done} epoch(s) already trained`);
      continue;
    }
    if (a !== b) diffs.push(`${FLAG_NAMES[k]}: the run has ${show(k, a)}, given ${show(k, b)}`);
  }
  if (diffs.length) {
    throw new DataError(
      `--resume: these flags differ from the run in ${from}, and changing them would change the run:\n  ${diffs.join('\n  ')}\n` +
        `give the run's values (only --epochs may grow, and --patience and --save-every may change), or start a new run with --force or another --out`,
    );
  }
}
