// The ablation study: every fusion variant trained with the same data, seed(s) and budget, each scored on a test
// split with its best-on-dev checkpoint; one table (weighted F1, macro F1, accuracy, parameters, train time),
// written as <outDir>/ablation.md and ablation.json. What `emofuse ablate` runs and prints.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FeatureSet } from './features.ts';
import { openBackend } from './fusion/open-backend.ts';
import type { FusionVariant } from './fusion/model.ts';
import { writeFileAtomic } from './io.ts';
import { DataError } from './train/data.ts';
import { loadCheckpoint } from './train/checkpoint.ts';
import { evaluate, train, type TrainOptions } from './train/trainer.ts';

export interface AblationOptions {
  variants: readonly FusionVariant[];
  /** Each variant trains once per seed; the scores are averaged. */
  seeds: readonly number[];
  testSplit: string;
  /** Runs go to <outDir>/<variant>-s<seed>, the table to <outDir>/ablation.md and ablation.json. */
  outDir: string;
  /** A name in BACKENDS; each run opens its own. */
  backend: string;
  /** The budget every run shares; `model.fusion`, `model.seed` and `outDir` are set per run. */
  train: Omit<TrainOptions, 'outDir' | 'onStep' | 'onEpoch' | 'resume'>;
  /** Names the features in the report ('feature cache runs/cache'). */
  source: string;
  /** Called before each run; what it returns is called after every step of that run. */
  onRunStart?: (run: { fusion: FusionVariant; seed: number }) => TrainOptions['onStep'];
  /** Called after each run (also when it failed: then `result` is undefined). */
  onRunEnd?: (run: { fusion: FusionVariant; seed: number; result?: AblationRun }) => void;
}

export interface AblationRun {
  weightedF1: number;
  macroF1: number;
  accuracy: number;
  trainSeconds: number;
  params: number;
  epochs: number;
}

export interface AblationRow {
  fusion: FusionVariant;
  seeds: number[];
  weightedF1: number;
  weightedF1Std: number;
  macroF1: number;
  accuracy: number;
  params: number;
  trainSeconds: number;
  epochs: number;
}

/** What ablation.json holds. */
export interface AblationResult {
  data: string;
  testSplit: string;
  testSize: number;
  budget: string;
  backend: string;
  rows: AblationRow[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

export async function runAblation(features: FeatureSet, o: AblationOptions): Promise<AblationResult> {
  const test = features.splits[o.testSplit];
  if (!test || test.size === 0) throw new DataError(`${o.source}: split '${o.testSplit}' is missing or empty; choose one with --test-split`);
  if (o.variants.length === 0 || o.seeds.length === 0) throw new DataError('ablation: give at least one variant and one seed');
  mkdirSync(o.outDir, { recursive: true });
  const rows: AblationRow[] = [];
  for (const fusion of o.variants) {
    const runs: AblationRun[] = [];
    for (const seed of o.seeds) {
      const onStep = o.onRunStart?.({ fusion, seed });
      const backend = await openBackend(o.backend);
      let result: AblationRun | undefined;
      try {
        const opts: TrainOptions = { ...o.train, model: { ...o.train.model, fusion, seed }, outDir: join(o.outDir, `${fusion}-s${seed}`), onStep };
        const r = await train(backend, features, opts);
        const { model, meta } = loadCheckpoint(backend, r.bestCheckpoint);
        const m = await evaluate(model, test, meta.classNames, opts.batchSize);
        result = { weightedF1: m.weightedF1, macroF1: m.macroF1, accuracy: m.accuracy, trainSeconds: r.seconds, params: model.numParams, epochs: r.epochs };
        runs.push(result);
      } finally {
        o.onRunEnd?.({ fusion, seed, result });
        await backend.destroy();
      }
    }
    rows.push({
      fusion, seeds: [...o.seeds], weightedF1: mean(runs.map((r) => r.weightedF1)), weightedF1Std: std(runs.map((r) => r.weightedF1)),
      macroF1: mean(runs.map((r) => r.macroF1)), accuracy: mean(runs.map((r) => r.accuracy)), params: runs[0]!.params,
      trainSeconds: mean(runs.map((r) => r.trainSeconds)), epochs: mean(runs.map((r) => r.epochs)),
    });
  }
  const t = o.train;
  const m = t.model ?? {};
  const budget =
    `epochs ${t.epochs}, batch ${t.batchSize}, lr ${t.lr}, width ${m.width}, heads ${m.heads}, layers ${m.layers}, ` +
    `seeds ${o.seeds.join(',')}, patience ${t.patience ?? 0}`;
  const result: AblationResult = { data: o.source, testSplit: o.testSplit, testSize: test.size, budget, backend: o.backend, rows };
  writeFileAtomic(join(o.outDir, 'ablation.md'), ablationMarkdown(result));
  writeFileAtomic(join(o.outDir, 'ablation.json'), JSON.stringify(result, null, 2) + '\n');
  return result;
}

/** The table's header and one row of cells per variant (percentages with one decimal; ± std over seeds). */
export function ablationTable(r: AblationResult): { header: string[]; cells: (string | number)[][] } {
  const pct = (x: number) => (100 * x).toFixed(1);
  const many = (r.rows[0]?.seeds.length ?? 1) > 1;
  return {
    header: ['fusion', 'weighted F1', 'macro F1', 'accuracy', 'params', 'train s', 'epochs'],
    cells: r.rows.map((row) => [
      row.fusion, many ? `${pct(row.weightedF1)} ± ${pct(row.weightedF1Std)}` : pct(row.weightedF1), pct(row.macroF1), pct(row.accuracy),
      row.params, row.trainSeconds.toFixed(1), row.epochs.toFixed(many ? 1 : 0),
    ]),
  };
}

/** ablation.md */
export function ablationMarkdown(r: AblationResult): string {
  const { header, cells } = ablationTable(r);
  return (
    `# emofuse ablate\n\nData: ${r.data}; scored on '${r.testSplit}' (${r.testSize} utterances) with each run's best-on-dev checkpoint.\n` +
    `Budget: ${r.budget}; backend ${r.backend}.\n\n` +
    `| ${header.join(' | ')} |\n|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|\n` +
    cells.map((c) => `| ${c.join(' | ')} |`).join('\n') + '\n'
  );
}
