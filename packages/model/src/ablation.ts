// The ablation study: every fusion variant trained with the same data, seed(s) and budget, each scored on a test
// split with its best-on-dev checkpoint; one table (weighted F1, macro F1, accuracy, parameters, train time),
// written as <outDir>/ablation.md and ablation.json. What `emofuse ablate` runs and prints.
//
// The `linear` variant (a logistic regression on mean + std pooled, standardized features) is always in the table:
// it is the floor an attention variant has to beat to be worth its parameters.
//
// With `folds` K the test split is not used: train + dev are pooled and cut into K folds by speaker (no speaker in
// two folds), and every run trains on K-1 folds for the full epochs (no early stopping: its held-out fold is not
// for choosing) and is scored on the held-out fold with its last weights. The table then holds the mean and std over
// folds x seeds: model selection that a corpus of a few hundred clips and a two-speaker dev split can support.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAugmented, originalName } from './audio/augment.ts';
import { selectSplit, speakerFolds, type FeatureSet, type FeatureSplit } from './features.ts';
import { openBackend } from './fusion/open-backend.ts';
import type { FusionVariant } from './fusion/model.ts';
import { writeFileAtomic } from './io.ts';
import { DataError } from './errors.ts';
import { TRAIN_DEFAULTS } from './train/defaults.ts';
import { flagOf } from './train/settings.ts';
import { loadCheckpoint } from './train/checkpoint.ts';
import { evaluate, readThroughLabelMap, train, type TrainOptions } from './train/trainer.ts';
import { perCorpusScores, type CorpusScores } from './eval-report.ts';
import { standardizeSpeakers } from './datasets/feature-sets.ts';

export interface AblationOptions {
  variants: readonly FusionVariant[];
  /** Each variant trains once per seed; the scores are averaged. */
  seeds: readonly number[];
  testSplit: string;
  /**
   * Which weights of a run are scored on testSplit: 'best' (default) the best-on-dev checkpoint, 'last' the weights
   * after the last epoch (when the dev split is too small to choose an epoch; folds always score 'last').
   */
  checkpoint?: 'best' | 'last';
  /** Speaker-grouped K-fold cross-validation over train + dev instead of scoring on testSplit (K >= 2). */
  folds?: number;
  /** The speaker of an utterance, for folds (default: the split's recorded speakers). */
  speakerOf?: (id: string) => string;
  /** Runs go to <outDir>/<variant>-s<seed>, the table to <outDir>/ablation.md and ablation.json. */
  outDir: string;
  /** A name in BACKENDS; each run opens its own. */
  backend: string;
  /**
   * Continue an interrupted ablation in outDir (the same plan, checked): a finished run's scores are read back from
   * its run.json, the interrupted run resumes from its last.safetensors (train's resume: bit-for-bit), the rest run.
   */
  resume?: boolean;
  /** The budget every run shares; `model.fusion`, `model.seed` and `outDir` are set per run. */
  train: Omit<TrainOptions, 'outDir' | 'onStep' | 'onEpoch' | 'resume'>;
  /** Names the features in the report ('feature cache runs/cache'). */
  source: string;
  /** Called before each run; what it returns is called after every step of that run. */
  onRunStart?: (run: { fusion: FusionVariant; seed: number; fold?: number }) => TrainOptions['onStep'];
  /** Called after each run (also when it failed: then `result` is undefined). */
  onRunEnd?: (run: { fusion: FusionVariant; seed: number; fold?: number; result?: AblationRun }) => void;
}

export interface AblationRun {
  weightedF1: number;
  macroF1: number;
  accuracy: number;
  /** Features joined from several caches: each source corpus's scores on the test split (or held-out fold). */
  perCorpus?: CorpusScores[];
  trainSeconds: number;
  params: number;
  epochs: number;
}

export interface AblationRow {
  fusion: FusionVariant;
  seeds: number[];
  /** Every run's test (or held-out fold) weighted F1 and accuracy, in run order (seeds, or folds x seeds). */
  runs?: { seed: number; fold?: number; weightedF1: number; accuracy: number }[];
  accuracyStd?: number;
  weightedF1: number;
  weightedF1Std: number;
  macroF1: number;
  accuracy: number;
  params: number;
  trainSeconds: number;
  epochs: number;
  /** Features joined from several caches: each source corpus's weighted F1 and accuracy, mean over the runs. */
  perCorpus?: { corpus: string; n: number; weightedF1: number; accuracy: number }[];
}

/** What ablation.json holds. */
export interface AblationResult {
  data: string;
  /** The test split, or 'folds' (then `folds` says how the folds were made). */
  testSplit: string;
  testSize: number;
  folds?: { k: number; speakers: string[][]; sizes: number[] };
  /** 'last' when each run was scored with its last weights rather than its best-on-dev checkpoint. */
  checkpoint?: 'last';
  budget: string;
  backend: string;
  rows: AblationRow[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

/** The variants to run: the ones asked for, and `linear` (the floor) when it is not among them. */
export function withLinearFloor(variants: readonly FusionVariant[]): FusionVariant[] {
  return variants.includes('linear') ? [...variants] : [...variants, 'linear'];
}

/** A finished run's scores, in its run folder: what --resume reads back instead of training it again. */
const RUN_RESULT = 'run.json';
/** What an ablation was asked to do, in its --out: --resume continues only the same plan. */
const PLAN = 'ablation-plan.json';

function readRunResult(dir: string): AblationRun | undefined {
  const file = join(dir, RUN_RESULT);
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as AblationRun;
    if (['weightedF1', 'macroF1', 'accuracy', 'trainSeconds', 'params', 'epochs'].every((k) => Number.isFinite(r[k as keyof AblationRun])))
      return r;
  } catch {
    // damaged (writeFileAtomic makes that unlikely): the run is resumed from its checkpoint instead
  }
  return undefined;
}

/**
 * Writes the plan (variants, seeds, folds, scoring, backend, data and the shared budget) to <outDir>/ablation-plan.json;
 * with `resume`, refuses a plan that differs from the one there, naming what differs.
 */
function checkPlan(o: AblationOptions, variants: readonly FusionVariant[]): void {
  const { force: _force, ...budget } = o.train;
  const plan: Record<string, unknown> = JSON.parse(
    JSON.stringify({
      variants,
      seeds: o.seeds,
      folds: o.folds ?? null,
      testSplit: o.testSplit,
      checkpoint: o.checkpoint ?? 'best',
      backend: o.backend,
      data: o.source,
      train: budget,
    }),
  );
  const file = join(o.outDir, PLAN);
  if (o.resume && existsSync(file)) {
    let before: Record<string, unknown> = {};
    try {
      before = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // unreadable: every field then differs, and the message says so
    }
    const flat = (x: Record<string, unknown>): Record<string, unknown> => {
      const { train, ...rest } = x as { train?: Record<string, unknown> };
      return { ...rest, ...Object.fromEntries(Object.entries(train ?? {}).map(([k, v]) => [`train.${k}`, v])) };
    };
    const [a, b] = [flat(before), flat(plan)];
    const diffs = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (diffs.length) {
      throw new DataError(
        `${flagOf('resume')}: this ablation differs from the one in ${o.outDir}: ` +
          diffs.map((k) => `${k} was ${JSON.stringify(a[k]) ?? 'not set'}, now ${JSON.stringify(b[k]) ?? 'not set'}`).join('; ') +
          `; give the same flags, or start over with ${flagOf('force')}`,
      );
    }
  }
  writeFileAtomic(file, JSON.stringify(plan, null, 2) + '\n');
}

export async function runAblation(given: FeatureSet, o: AblationOptions): Promise<AblationResult> {
  if (o.variants.length === 0 || o.seeds.length === 0) throw new DataError('ablation: give at least one variant and one seed');
  // once, so that every run and its scoring read the same labels and tokens
  const mapped = readThroughLabelMap(given, o.train.labelMap);
  const features = o.train.speakerNorm ? standardizeSpeakers(mapped) : mapped;
  const variants = withLinearFloor(o.variants);
  // the evaluations: one (test split), or one per fold (train on the other folds, score on it)
  const evals = o.folds === undefined ? [testEvaluation(features, o)] : foldEvaluations(features, o);
  mkdirSync(o.outDir, { recursive: true });
  checkPlan(o, variants);
  const rows: AblationRow[] = [];
  for (const fusion of variants) {
    const runs: (AblationRun & { seed: number; fold?: number })[] = [];
    for (const seed of o.seeds) {
      for (const ev of evals) {
        const dir = join(o.outDir, `${fusion}-s${seed}${ev.fold === undefined ? '' : `-f${ev.fold}`}`);
        const finished = o.resume ? readRunResult(dir) : undefined;
        if (finished) {
          runs.push({ ...finished, seed, fold: ev.fold });
          o.onRunEnd?.({ fusion, seed, fold: ev.fold, result: finished });
          continue;
        }
        const onStep = o.onRunStart?.({ fusion, seed, fold: ev.fold });
        const backend = await openBackend(o.backend);
        let result: AblationRun | undefined;
        try {
          // resuming: the interrupted run continues from its last checkpoint; one killed before its first starts over
          const interrupted = o.resume === true && existsSync(join(dir, 'last.safetensors'));
          const opts: TrainOptions = {
            ...o.train,
            ...ev.train,
            model: { ...o.train.model, fusion, seed },
            outDir: dir,
            onStep,
            ...(interrupted ? { resume: true, force: false } : o.resume ? { force: true } : {}),
          };
          const r = await train(backend, ev.features, opts);
          // folds: the last weights (the held-out fold chose nothing); otherwise the best-on-dev checkpoint
          const model = ev.fold === undefined && o.checkpoint !== 'last' ? loadCheckpoint(backend, r.bestCheckpoint).model : r.model;
          const m = await evaluate(model, ev.test, features.classNames, opts.batchSize);
          const perCorpus = perCorpusScores(ev.test, m.predictions, features.classNames);
          result = {
            weightedF1: m.weightedF1,
            macroF1: m.macroF1,
            accuracy: m.accuracy,
            trainSeconds: r.seconds,
            params: model.numParams,
            epochs: r.epochs,
            ...(perCorpus ? { perCorpus } : {}),
          };
          writeFileAtomic(join(dir, RUN_RESULT), JSON.stringify(result, null, 2) + '\n');
          runs.push({ ...result, seed, fold: ev.fold });
        } finally {
          o.onRunEnd?.({ fusion, seed, fold: ev.fold, result });
          await backend.destroy();
        }
      }
    }
    rows.push({
      fusion,
      seeds: [...o.seeds],
      weightedF1: mean(runs.map((r) => r.weightedF1)),
      weightedF1Std: std(runs.map((r) => r.weightedF1)),
      macroF1: mean(runs.map((r) => r.macroF1)),
      accuracy: mean(runs.map((r) => r.accuracy)),
      accuracyStd: std(runs.map((r) => r.accuracy)),
      params: runs[0]!.params,
      trainSeconds: mean(runs.map((r) => r.trainSeconds)),
      epochs: mean(runs.map((r) => r.epochs)),
      runs: runs.map((r) => ({
        seed: r.seed,
        ...(r.fold === undefined ? {} : { fold: r.fold }),
        weightedF1: r.weightedF1,
        accuracy: r.accuracy,
      })),
      ...(runs[0]!.perCorpus
        ? {
            perCorpus: meanPerCorpus(
              runs.map((r) => r.perCorpus!),
              o.seeds.length,
            ),
          }
        : {}),
    });
  }
  const t = o.train;
  const m = t.model ?? {};
  const budget =
    `epochs ${t.epochs}, batch ${t.batchSize}, lr ${t.lr}, width ${m.width}, heads ${m.heads}, layers ${m.layers}, ` +
    `dropout ${m.dropout}, block dropout ${m.blockDropout ?? 0}, linear skip ${m.linearSkip ? 'on' : 'off'}, weight decay ` +
    `${t.weightDecay}, label smoothing ${t.labelSmoothing ?? 0}, class weights ${t.classWeights}, ` +
    `standardize ${t.standardize ?? true}, seeds ${o.seeds.join(',')}, ` +
    (o.folds === undefined ? `patience ${t.patience ?? 0}` : `${o.folds} speaker folds, no early stopping`);
  const folds =
    o.folds === undefined ? undefined : { k: o.folds, speakers: evals.map((e) => e.speakers!), sizes: evals.map((e) => e.test.size) };
  const result: AblationResult = {
    ...(o.checkpoint === 'last' && !folds ? { checkpoint: 'last' as const } : {}),
    data: o.source,
    testSplit: folds ? 'folds' : o.testSplit,
    testSize: folds ? folds.sizes.reduce((a, b) => a + b, 0) : evals[0]!.test.size,
    ...(folds ? { folds } : {}),
    budget,
    backend: o.backend,
    rows,
  };
  writeFileAtomic(join(o.outDir, 'ablation.md'), ablationMarkdown(result));
  writeFileAtomic(join(o.outDir, 'ablation.json'), JSON.stringify(result, null, 2) + '\n');
  return result;
}

/** Each corpus's scores averaged over runs (utterances summed over folds, as the held-out folds partition the data). */
function meanPerCorpus(runs: CorpusScores[][], seeds: number): NonNullable<AblationRow['perCorpus']> {
  const corpora = [...new Set(runs.flatMap((r) => r.map((c) => c.corpus)))];
  return corpora.map((corpus) => {
    const xs = runs.flatMap((r) => r.filter((c) => c.corpus === corpus));
    return {
      corpus,
      n: xs.reduce((a, c) => a + c.n, 0) / seeds,
      weightedF1: mean(xs.map((c) => c.weightedF1)),
      accuracy: mean(xs.map((c) => c.accuracy)),
    };
  });
}

/** One way of scoring a run: the features it trains on (and the train options that go with them), the split it is scored on. */
export interface Evaluation {
  features: FeatureSet;
  train: Partial<TrainOptions>;
  test: FeatureSplit;
  fold?: number;
  speakers?: string[];
}

function testEvaluation(features: FeatureSet, o: AblationOptions): Evaluation {
  const test = features.splits[o.testSplit];
  if (!test || test.size === 0)
    throw new DataError(`${o.source}: split '${o.testSplit}' is missing or empty; choose one with ${flagOf('testSplit')}`);
  return { features, train: {}, test };
}

/** K evaluations over train + dev cut by speaker: each trains on K-1 folds (no early stopping) and is scored on the last. */
export function foldEvaluations(features: FeatureSet, o: Pick<AblationOptions, 'folds' | 'speakerOf' | 'train' | 'source'>): Evaluation[] {
  const K = o.folds!;
  const names = [o.train.trainSplit ?? TRAIN_DEFAULTS.trainSplit, o.train.devSplit ?? TRAIN_DEFAULTS.devSplit];
  const parts = names.map((n) => {
    const split = features.splits[n];
    if (!split || split.size === 0)
      throw new DataError(`${o.source}: folds pool the '${names.join("' and '")}' splits; '${n}' is missing or empty`);
    return split;
  });
  const pooled = selectSplit(parts.map((split) => ({ split, indices: Array.from({ length: split.size }, (_, i) => i) })));
  // an augmented copy (extract --augment: '<id>~speed0.9', pseudo-speaker '<speaker>~speed0.9') goes with its original
  // speaker's fold, and a held-out fold scores the originals only: no copy of a held-out clip ever trains
  const speakers = pooled.ids.map((id, i) => {
    const s = o.speakerOf ? o.speakerOf(originalName(id)) : pooled.speakers?.[i];
    if (s === undefined || s === '')
      throw new DataError(`${o.source}: no speaker for utterance '${id}'; folds need one for every utterance (${flagOf('speakerOf')})`);
    return originalName(s);
  });
  let folds: number[][];
  try {
    folds = speakerFolds(speakers, K);
  } catch (err) {
    throw new DataError(`${o.source}: ${flagOf('folds')} ${K}: ${(err as Error).message}`);
  }
  const all = Array.from({ length: pooled.size }, (_, i) => i);
  return folds.map((held, f) => {
    const out = new Set(held);
    const trainSplit = selectSplit([{ split: pooled, indices: all.filter((i) => !out.has(i)) }]);
    const test = selectSplit([{ split: pooled, indices: held.filter((i) => !isAugmented(pooled.ids[i]!)) }]);
    return {
      features: { ...features, splits: { 'fold-train': trainSplit, 'fold-held-out': test } },
      train: { trainSplit: 'fold-train', devSplit: 'fold-held-out', patience: 0 },
      test,
      fold: f,
      speakers: [...new Set(held.map((i) => speakers[i]!))].sort(),
    };
  });
}

/** The table's header and one row of cells per variant (percentages with one decimal; ± std over seeds). */
export function ablationTable(r: AblationResult): { header: string[]; cells: (string | number)[][] } {
  const pct = (x: number) => (100 * x).toFixed(1);
  const many = (r.rows[0]?.runs?.length ?? r.rows[0]?.seeds.length ?? 1) > 1;
  const pm = (x: number, sd: number | undefined) => (many && sd !== undefined ? `${pct(x)} ± ${pct(sd)}` : pct(x));
  // joined caches: each source corpus's weighted F1 and accuracy beside the scores of all
  const corpora = r.rows[0]?.perCorpus?.map((c) => c.corpus) ?? [];
  return {
    header: [
      'fusion',
      'weighted F1',
      'macro F1',
      'accuracy',
      ...corpora.flatMap((c) => [`${c} wF1`, `${c} acc`]),
      'params',
      'train s',
      'epochs',
    ],
    cells: r.rows.map((row) => [
      row.fusion,
      pm(row.weightedF1, row.weightedF1Std),
      pct(row.macroF1),
      pm(row.accuracy, row.accuracyStd),
      ...corpora.flatMap((c) => {
        const s = row.perCorpus?.find((p) => p.corpus === c);
        return s ? [pct(s.weightedF1), pct(s.accuracy)] : ['-', '-'];
      }),
      row.params,
      row.trainSeconds.toFixed(1),
      row.epochs.toFixed(many ? 1 : 0),
    ]),
  };
}

/** ablation.md */
export function ablationMarkdown(r: AblationResult): string {
  const { header, cells } = ablationTable(r);
  return (
    `# emofuse ablate\n\nData: ${r.data}; ` +
    (r.folds
      ? `${r.folds.k} speaker-grouped folds over train + dev (${r.folds.sizes.join(' / ')} utterances; speakers ` +
        `${r.folds.speakers.map((s) => s.join('+')).join(' / ')}), ` +
        `each scored with the last weights of a run on the other folds; mean ± std over folds x seeds.\n`
      : `scored on '${r.testSplit}' (${r.testSize} utterances) with each run's ` +
        `${r.checkpoint === 'last' ? 'last weights' : 'best-on-dev checkpoint'}.\n`) +
    `Budget: ${r.budget}; backend ${r.backend}.\n\n` +
    `| ${header.join(' | ')} |\n|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|\n` +
    cells.map((c) => `| ${c.join(' | ')} |`).join('\n') +
    '\n'
  );
}
