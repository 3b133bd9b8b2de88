// The training loop: seeded epoch orders of length-grouped batches, each padded to its own bucketed lengths, class-weighted cross-entropy,
// AdamW with warm-up + cosine/linear decay and global-norm clipping (all on the backend), dev evaluation each epoch with early stopping on
// weighted F1, a JSONL metrics log, and checkpoints (`last.safetensors` every `saveEvery` steps and at each epoch end, `best.safetensors`
// at each dev improvement). `resume` reloads `last.safetensors` and continues bit-for-bit: the epoch order, the dropout masks and the
// schedule all derive from (seed, step).

import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FeatureSet, FeatureSplit, SpeakerNormReport } from '../features.ts';
import { writeFileAtomic } from '../io.ts';
import type { Backend } from '../fusion/backend.ts';
import { DEFAULT_FUSION, FUSION_SPECS, FusionModel, requiredModalities, type AdamwSettings, type FusionConfig } from '../fusion/model.ts';
import {
  computeInputNorm,
  pooledTokenStats,
  speakerFallbackToJson,
  speakerNormMixDraw,
  speakerStandardizedSplit,
  type SpeakerFallback,
  type SpeakerFallbackJson,
  type SpeakerStats,
} from '../fusion/input-norm.ts';
import { argmax, computeMetrics, softmax, type Metrics } from '../metrics/metrics.ts';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.ts';
import { DataError } from '../errors.ts';
import {
  batchShape,
  dropModalities,
  epochBatches,
  inverseFrequencyWeights,
  lengthKeys,
  sortedBatches,
  validateFeatureSet,
} from './data.ts';
import { mapFeatureSet, standardizeSpeakers, withJoinedSplits } from '../datasets/feature-sets.ts';
import { parseLabelMap, sameLabelMap, type CorpusLabelMapReport } from '../datasets/label-map.ts';
import { learningRate } from './schedule.ts';
import { ADAMW_BETAS, TRAIN_DEFAULTS, defaultWarmup } from './defaults.ts';
import { acquireRunLock, cleanOrphanedTemps, runFolderInUse } from './run-folder.ts';
import { checkResumeSettings, flagOf, storedSettings, type StoredSettings, type TrainSettings } from './settings.ts';

/**
 * What train() takes: the training settings (TrainSettings: one field per entry of TRAIN_SETTINGS, ./settings.ts;
 * each left out takes its default) and how this run is driven.
 */
export interface TrainOptions extends TrainSettings {
  // required of a library caller (the CLI always gives them)
  epochs: number;
  batchSize: number;
  lr: number;
  outDir: string;
  /** Continue the run in outDir from its last.safetensors (its stored settings must match these: checkResumeSettings). */
  resume?: boolean;
  /** Start a new run in an outDir that already holds one (its checkpoints and metrics log are replaced). */
  force?: boolean;
  /** Aborted (Ctrl-C, SIGTERM): stop after the current step, save last.safetensors, return with interrupted set. */
  signal?: AbortSignal;
  /** Called after every step. */
  onStep?: (s: { step: number; total: number; epoch: number; loss: number; lr: number }) => void;
  /** Called after every epoch with its log record. */
  onEpoch?: (r: EpochRecord) => void;
  /** Called once, before training, with the label map's report per source corpus (when `labelMap` is given). */
  onLabelMap?: (reports: readonly CorpusLabelMapReport[]) => void;
  /** Called once, before training, with how many utterances got their speaker's statistics (when `speakerNorm` is on). */
  onSpeakerNorm?: (report: SpeakerNormReport) => void;
}

export interface EpochRecord {
  epoch: number;
  step: number;
  trainLoss: number;
  lr: number;
  dev: { accuracy: number; weightedF1: number; macroF1: number };
  best: boolean;
  seconds: number;
}

export interface TrainResult {
  model: FusionModel;
  steps: number;
  epochs: number;
  bestDevWeightedF1: number;
  bestEpoch: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  seconds: number;
  lastCheckpoint: string;
  bestCheckpoint: string;
}

interface TrainState {
  bestDevWeightedF1: number;
  bestEpoch: number;
  badEpochs: number;
  epochLossSum: number;
  epochBatches: number;
  stoppedEarly: boolean;
  seconds: number;
  /** Tags every metrics.jsonl line of this run (kept across --resume). */
  runId?: string;
  /** Every setting the run was started with (checked on --resume). */
  flags?: StoredSettings;
  /** --speaker-norm: the pooled raw train statistics, for an utterance without a speaker's (predict.ts reads them). */
  speakerFallback?: SpeakerFallbackJson;
}

export async function train(backend: Backend, features: FeatureSet, o: TrainOptions): Promise<TrainResult> {
  const trainName = o.trainSplit ?? TRAIN_DEFAULTS.trainSplit;
  const devName = o.devSplit ?? TRAIN_DEFAULTS.devSplit;
  const mapped = readThroughLabelMap(withJoinedSplits(features, [trainName, devName]), o.labelMap); // 'train+dev': one split
  if (mapped.labelMaps && o.labelMap !== undefined) o.onLabelMap?.(mapped.labelMaps);
  // --speaker-norm: the pooled raw train statistics, for every utterance without a speaker's (fusion/input-norm.ts)
  const rawTrain = mapped.splits[trainName];
  const fallback = o.speakerNorm && rawTrain && !mapped.speakerNorm ? pooledTokenStats(rawTrain, mapped.textDim, mapped.audioDim) : null;
  const mix = o.speakerNormMix ?? TRAIN_DEFAULTS.speakerNormMix;
  if (mix > 0 && !o.speakerNorm) throw new DataError(`${flagOf('speakerNormMix')} ${mix} needs ${flagOf('speakerNorm')} on`);
  const fs = o.speakerNorm ? standardizeSpeakers(mapped, fallback) : mapped; // a data transform, before the train statistics
  if (fs.speakerNorm) o.onSpeakerNorm?.(fs.speakerNorm);
  const fusion = o.model?.fusion ?? DEFAULT_FUSION.fusion;
  // the modalities the variant needs
  const longest = validateFeatureSet(fs, [trainName, devName], 'features', requiredModalities(FUSION_SPECS[fusion]));
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
    throw new DataError(`${flagOf('batchSize')} must be a positive integer, got ${o.batchSize}`);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new DataError(`${flagOf('epochs')} must be a positive integer, got ${o.epochs}`);
  const trainSplit = fs.splits[trainName]!;
  const devSplit = fs.splits[devName]!;
  const K = fs.classNames.length;
  const lastPath = join(o.outDir, 'last.safetensors');
  const bestPath = join(o.outDir, 'best.safetensors');
  const logPath = join(o.outDir, 'metrics.jsonl');
  if (o.batchSize > trainSplit.size) {
    const flag = flagOf('batchSize');
    throw new DataError(
      `${flag} ${o.batchSize} is larger than the '${trainName}' split (${trainSplit.size} utterances): use ${flag} ` +
        `${trainSplit.size} or less`,
    );
  }
  if (!o.resume && !o.force && runFolderInUse(o.outDir)) {
    throw new DataError(
      `${flagOf('outDir')} ${o.outDir} already holds a training run: continue it with ${flagOf('resume')}, start over in it with ` +
        `${flagOf('force')}, ` +
        `or choose another ${flagOf('outDir')}`,
    );
  }
  mkdirSync(o.outDir, { recursive: true });
  const releaseLock = acquireRunLock(o.outDir);
  try {
    // --speaker-norm-mix: epoch e's view of the train split, each utterance by its speaker's or the pooled statistics
    const stats = (fs as { speakerStats?: ReadonlyMap<string, SpeakerStats> }).speakerStats;
    const trainView =
      mix > 0 && fallback && rawTrain && stats
        ? (seed: number, epoch: number) =>
            speakerStandardizedSplit(rawTrain, rawTrain.speakers ?? [], stats, {
              fallback,
              pooled: (u) => speakerNormMixDraw(seed, epoch, u) < mix,
            })
        : null;
    const x = { trainName, devName, longest, trainSplit, devSplit, K, lastPath, bestPath, logPath, fallback, trainView };
    return await trainLocked(backend, fs, o, x);
  } finally {
    releaseLock();
  }
}

async function trainLocked(
  backend: Backend,
  fs: FeatureSet,
  o: TrainOptions,
  x: {
    trainName: string;
    devName: string;
    longest: { text: number; audio: number };
    trainSplit: FeatureSplit;
    devSplit: FeatureSplit;
    K: number;
    lastPath: string;
    bestPath: string;
    logPath: string;
    fallback: SpeakerFallback | null;
    trainView: ((seed: number, epoch: number) => FeatureSplit) | null;
  },
): Promise<TrainResult> {
  const { trainSplit, devSplit, K, lastPath, bestPath, logPath, longest } = x;
  cleanOrphanedTemps(o.outDir);
  const flags = storedSettings(o);

  let model: FusionModel;
  let state: TrainState = {
    bestDevWeightedF1: -1,
    bestEpoch: -1,
    badEpochs: 0,
    epochLossSum: 0,
    epochBatches: 0,
    stoppedEarly: false,
    seconds: 0,
  };
  if (o.resume) {
    const { model: m, meta, from } = loadResumable(backend, lastPath, bestPath);
    checkFeaturesMatch(meta, fs, from);
    checkResumeSettings(meta.train.flags as StoredSettings | undefined, flags, from, meta.step, trainSplit.size);
    model = m;
    state = meta.train as unknown as TrainState;
    // A run killed after logging an epoch but before checkpointing it logs that epoch again: drop such lines,
    // and a line torn by a kill mid-write.
    if (existsSync(logPath)) {
      const kept = readFileSync(logPath, 'utf8')
        .split('\n')
        .filter((l) => {
          if (!l.trim()) return false;
          try {
            return (JSON.parse(l) as EpochRecord).step <= meta.step;
          } catch {
            return false;
          }
        });
      writeFileAtomic(logPath, kept.map((l) => `${l}\n`).join(''));
    }
  } else {
    if (o.force) for (const f of [lastPath, bestPath, logPath]) rmSync(f, { force: true });
    const config: FusionConfig = {
      ...DEFAULT_FUSION,
      ...o.model,
      textDim: fs.textDim,
      audioDim: fs.audioDim,
      ...((fs.audioLayers ?? 1) > 1 ? { audioLayers: fs.audioLayers } : {}),
      maxTextLen: Math.min(longest.text, o.maxTextLen ?? Infinity),
      maxAudioLen: Math.min(longest.audio, o.maxAudioLen ?? Infinity),
      numClasses: K,
    };
    model = FusionModel.create(backend, config);
    if (o.standardize ?? TRAIN_DEFAULTS.standardize) {
      const s = model.spec;
      model.setInputNorm(
        computeInputNorm(trainSplit, {
          Tt: config.maxTextLen,
          Ta: config.maxAudioLen,
          Ct: config.textDim,
          Ca: config.audioDim,
          text: s.text,
          audio: s.audio,
          pooled: s.head === 'linear' || (model.hasSkip && { text: s.text, audio: s.audio }),
        }),
      );
    }
    state.runId = randomBytes(6).toString('hex');
    if (x.fallback) state.speakerFallback = speakerFallbackToJson(x.fallback);
  }
  state.flags = flags;
  const c = model.config;
  const B = o.batchSize;
  const weights = Array.isArray(o.classWeights)
    ? o.classWeights
    : (o.classWeights ?? TRAIN_DEFAULTS.classWeights) === 'inverse'
      ? inverseFrequencyWeights(trainSplit.labels, K)
      : new Array<number>(K).fill(1);
  if (weights.length !== K || weights.some((w) => !(w >= 0 && Number.isFinite(w)))) {
    throw new DataError(
      `${flagOf('classWeights')} must be ${K} finite numbers >= 0 (one per class: ${fs.classNames.join(', ')}), got ${weights.join(', ')}`,
    );
  }
  const stepsPerEpoch = Math.ceil(trainSplit.size / B);
  const total = o.epochs * stepsPerEpoch;
  const sched = {
    lr: o.lr,
    minLr: o.minLr ?? TRAIN_DEFAULTS.minLr,
    warmup: o.warmup ?? defaultWarmup(total),
    total,
    decay: o.decay ?? TRAIN_DEFAULTS.decay,
  };
  const adamw = (lr: number): AdamwSettings => ({
    lr,
    ...ADAMW_BETAS,
    weightDecay: o.weightDecay ?? TRAIN_DEFAULTS.weightDecay,
    maxGradNorm: o.maxGradNorm ?? TRAIN_DEFAULTS.maxGradNorm,
  });
  const meta = (metrics: Record<string, unknown>): CheckpointMeta => ({
    format: 1,
    config: c,
    classNames: [...fs.classNames],
    step: model.step,
    textEncoder: fs.textEncoder,
    audioEncoder: fs.audioEncoder,
    metrics,
    train: { ...state } as unknown as Record<string, unknown>,
    ...(fs.labelMaps ? { labelMaps: [...fs.labelMaps] } : {}),
  });
  const t0 = performance.now();
  const secondsBefore = state.seconds; // training time of the run before a resume
  const elapsed = () => secondsBefore + (performance.now() - t0) / 1000;
  let lastMetrics: Record<string, unknown> = {};
  let interrupted = false;
  let epochStart = performance.now();
  const modalityDropout = o.modalityDropout ?? TRAIN_DEFAULTS.modalityDropout;
  const bimodal = model.spec.text && model.spec.audio; // a one-modality variant has nothing to drop
  const keys = lengthKeys(trainSplit, c.maxTextLen, c.maxAudioLen); // [size] tokens per utterance, what batches are grouped by
  let batches = { epoch: -1, list: [] as number[][], split: trainSplit };
  const draw = trainSplit.corpora && { corpora: trainSplit.corpora, balance: o.balance ?? TRAIN_DEFAULTS.balance }; // --balance

  while (model.step < total && !state.stoppedEarly) {
    // A backend whose steps never wait on I/O (cpu) would starve the event loop: let a pending Ctrl-C arrive.
    if (o.signal) await new Promise((r) => setImmediate(r));
    const step = model.step;
    const epoch = Math.floor(step / stepsPerEpoch);
    const bi = step % stepsPerEpoch;
    if (batches.epoch !== epoch)
      batches = { epoch, list: epochBatches(keys, B, c.seed, epoch, draw), split: x.trainView?.(c.seed, epoch) ?? trainSplit };
    const idx = batches.list[bi]!;
    // [B, Tt, Ct], [B, Ta, Ca] at the batch's bucketed lengths, labels [B]
    const inputs = batches.split.batch(idx, batchShape(trainSplit, idx, B, c.maxTextLen, c.maxAudioLen));
    if (bimodal) dropModalities(inputs, modalityDropout, c.seed, step); // rows with both lose one, seeded by (seed, step, row)
    const lr = learningRate(step, sched);
    const acts = await model.trainStep(inputs, weights, adamw(lr), o.labelSmoothing ?? TRAIN_DEFAULTS.labelSmoothing);
    const loss = await model.readLoss(acts); // the one readback of a step
    if (!Number.isFinite(loss)) {
      throw new DataError(
        `training diverged: loss is ${loss} at step ${step + 1} (epoch ${epoch + 1}); lower ${flagOf('lr')} (now ${o.lr}) or ` +
          `check the features`,
      );
    }
    state.epochLossSum += loss;
    state.epochBatches += 1;
    o.onStep?.({ step: model.step, total, epoch, loss, lr });
    const endOfEpoch = bi === stepsPerEpoch - 1;
    if (endOfEpoch) {
      const dev = await evaluate(model, devSplit, fs.classNames, B);
      const byCorpus = (o.selectBy ?? TRAIN_DEFAULTS.selectBy) === 'corpus-mean';
      const score = byCorpus ? corpusMeanF1(devSplit, dev.predictions, fs.classNames) : dev.weightedF1;
      const improved = score > state.bestDevWeightedF1;
      const record: EpochRecord = {
        epoch: epoch + 1,
        step: model.step,
        trainLoss: state.epochLossSum / state.epochBatches,
        lr,
        dev: { accuracy: dev.accuracy, weightedF1: dev.weightedF1, macroF1: dev.macroF1 },
        best: improved,
        seconds: (performance.now() - epochStart) / 1000,
      };
      const logged = { run: state.runId, ...record };
      epochStart = performance.now();
      state.epochLossSum = 0;
      state.epochBatches = 0;
      if (improved) {
        state.bestDevWeightedF1 = score;
        state.bestEpoch = epoch + 1;
        state.badEpochs = 0;
      } else {
        state.badEpochs += 1;
        if (o.patience && state.badEpochs >= o.patience) state.stoppedEarly = true;
      }
      lastMetrics = { epoch: epoch + 1, dev: record.dev, trainLoss: record.trainLoss };
      appendFileSync(logPath, JSON.stringify(logged) + '\n');
      o.onEpoch?.(record);
      state.seconds = elapsed();
      if (improved) await saveCheckpoint(model, bestPath, meta(lastMetrics));
    }
    const stop = (o.stopAfterSteps !== undefined && model.step >= o.stopAfterSteps) || o.signal?.aborted === true;
    if (endOfEpoch || stop || (o.saveEvery && model.step % o.saveEvery === 0) || model.step === total) {
      state.seconds = elapsed();
      await saveCheckpoint(model, lastPath, meta(lastMetrics));
    }
    if (stop && model.step < total) {
      interrupted = true;
      break;
    }
  }
  return {
    model,
    steps: model.step,
    epochs: Math.ceil(model.step / stepsPerEpoch),
    bestDevWeightedF1: state.bestDevWeightedF1,
    bestEpoch: state.bestEpoch,
    stoppedEarly: state.stoppedEarly,
    interrupted,
    seconds: elapsed(),
    lastCheckpoint: lastPath,
    bestCheckpoint: bestPath,
  };
}

/**
 * The features read through the label map `spec` (--label-map; none: as they are). Features already read through a
 * map (`labelMaps`, as ablate passes them) must have been read through this one.
 */
export function readThroughLabelMap(fs: FeatureSet, spec: string | undefined): FeatureSet {
  if (spec === undefined) return fs;
  const map = parseLabelMap(spec);
  if (fs.labelMaps) {
    const had = fs.labelMaps[0]?.labelMap;
    if (had && !sameLabelMap(had, map))
      throw new DataError(`${flagOf('labelMap')} ${spec}: the features were already read through label map ${had.name}`);
    return fs;
  }
  return mapFeatureSet(fs, map);
}

/** last.safetensors, or best.safetensors when last is damaged (every state derives from (seed, step): exact). */
function loadResumable(backend: Backend, lastPath: string, bestPath: string): { model: FusionModel; meta: CheckpointMeta; from: string } {
  if (!existsSync(lastPath)) {
    const resume = flagOf('resume');
    throw new DataError(`${resume}: nothing to resume: ${lastPath} does not exist; train without ${resume} first`);
  }
  try {
    return { ...loadCheckpoint(backend, lastPath), from: lastPath };
  } catch (err) {
    const why = (err as Error).message;
    if (existsSync(bestPath)) {
      try {
        const r = loadCheckpoint(backend, bestPath);
        process.stderr.write(`emofuse: ${lastPath} is damaged (${why}); resuming from ${bestPath} (step ${r.meta.step}) instead\n`);
        return { ...r, from: bestPath };
      } catch {
        /* both damaged: the message below */
      }
    }
    throw new DataError(
      `${flagOf('resume')}: ${lastPath} is damaged (${why}) and no usable best.safetensors is beside it: ` +
        `delete ${lastPath} and train again without ${flagOf('resume')} (or with ${flagOf('force')})`,
    );
  }
}

function checkFeaturesMatch(meta: CheckpointMeta, fs: FeatureSet, path: string): void {
  const c = meta.config;
  if (c.textDim !== fs.textDim || c.audioDim !== fs.audioDim) {
    throw new DataError(
      `${path} was trained on features ${c.textDim} (text) x ${c.audioDim} (audio) wide, these are ${fs.textDim} x ${fs.audioDim}; ` +
        `extract the features with the checkpoint's encoders (${meta.textEncoder}, ${meta.audioEncoder})`,
    );
  }
  if (meta.classNames.join('\u0000') !== fs.classNames.join('\u0000')) {
    throw new DataError(`${path} classifies into [${meta.classNames.join(', ')}], the features are labelled [${fs.classNames.join(', ')}]`);
  }
}

/** Predictions and metrics on one split, no dropout, in batches of B of similar lengths, each padded to its own (bucketed). */
/** The mean over the split's corpora of each one's weighted F1 (the pooled weighted F1 where the split names no corpora). */
export function corpusMeanF1(split: FeatureSplit, predictions: readonly number[], classNames: readonly string[]): number {
  const corpora = split.corpora;
  if (!corpora) return computeMetrics(split.labels, predictions, classNames).weightedF1;
  const names = [...new Set(corpora)];
  const f1s = names.map((name) => {
    const idx = corpora.flatMap((c, i) => (c === name ? [i] : []));
    return computeMetrics(
      idx.map((i) => split.labels[i]!),
      idx.map((i) => predictions[i]!),
      classNames,
    ).weightedF1;
  });
  return f1s.reduce((a, b) => a + b, 0) / f1s.length;
}

export async function evaluate(
  model: FusionModel,
  split: FeatureSplit,
  classNames: readonly string[],
  B: number,
): Promise<Metrics & { predictions: number[]; probabilities: number[][] }> {
  const c = model.config;
  const predictions = new Array<number>(split.size);
  const probabilities = new Array<number[]>(split.size);
  const k = c.numClasses;
  for (const idx of sortedBatches(lengthKeys(split, c.maxTextLen, c.maxAudioLen), B)) {
    const logits = await model.predict(split.batch(idx, batchShape(split, idx, B, c.maxTextLen, c.maxAudioLen))); // [B, K_cls]
    idx.forEach((i, r) => {
      predictions[i] = argmax(logits, r * k, k);
      probabilities[i] = softmax(logits, r * k, k);
    });
  }
  return { ...computeMetrics(split.labels, predictions, classNames), predictions, probabilities };
}
