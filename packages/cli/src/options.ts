// The flags several commands share (data, backend, model and training), their parsing into the model's options,
// and the mapping of the model's input errors to user errors. Every default comes from the model's constants
// (DEFAULT_FUSION, TRAIN_DEFAULTS, DEFAULT_BACKEND): change a default there, not here.

import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import {
  AudioError, DEFAULT_BACKEND, DEFAULT_FUSION, DataError, DatasetError, EncoderDeviceError, EncoderSpecError, FUSION_VARIANTS, FeatureCacheError,
  FusionConfigError, ModelNotFoundError, PredictError, SynthesiserMissingError, TRAIN_DEFAULTS, UnknownBackendError, describeBackends,
  openBackend as openModelBackend, openFeatureCache, parseFusionVariant, readArraysFile, syntheticBimodal, type Backend, type FeatureSet,
  type TrainOptions,
} from '@emofuse/model';
import { UserError } from './output.ts';

/** The model's errors about its input: their messages name the file, field or setting and the fix. */
const INPUT_ERRORS = [
  AudioError, DataError, DatasetError, EncoderDeviceError, EncoderSpecError, FeatureCacheError, FusionConfigError, ModelNotFoundError, PredictError,
  SynthesiserMissingError, UnknownBackendError,
];

/** The model's input errors as user errors (exit 2, no stack trace); anything else is rethrown as it is. */
export function asUserError(err: unknown): never {
  if (INPUT_ERRORS.some((E) => err instanceof E)) throw new UserError((err as Error).message);
  throw err;
}

/** `f()`, with asUserError on what it throws. */
export function userErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    return asUserError(err);
  }
}

export function int(v: string, flag: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UserError(`${flag} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`}, got '${v}'`);
  }
  return n;
}

/** A number > 0 (learning rates). */
export function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`${flag} must be a number > 0, got '${v}'`);
  return n;
}

/** The largest model width and layer count the flags accept (wider runs out of memory long before). */
export const MAX_WIDTH = 4096;
export const MAX_LAYERS = 64;

export function num(v: string, flag: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UserError(`${flag} must be a number >= ${min}, got '${v}'`);
  return n;
}

// ------------------------------------------------------------------------------------------ --backend

export function addBackendOption(cmd: Command): Command {
  return cmd.option('--backend <name>', describeBackends(), DEFAULT_BACKEND);
}

export function openBackend(name: string): Promise<Backend> {
  return openModelBackend(name, '--backend').catch(asUserError);
}

// ------------------------------------------------------------------------------------------ data

export interface DataFlags {
  features?: string;
  synthetic?: boolean;
  syntheticSeed: string;
}

export function addDataOptions(cmd: Command): Command {
  return cmd
    .option('--features <path>', "a feature cache folder (from 'emofuse extract') or a JSON arrays file (see README)")
    .option('--synthetic', 'the generated bimodal task instead (4 classes = 2 text cues x 2 audio cues; no files needed)')
    .option('--synthetic-seed <n>', 'seed of the generated task', '1');
}

export function loadFeatures(f: DataFlags): { features: FeatureSet; source: string } {
  if (f.synthetic && f.features) throw new UserError('give either --features <path> or --synthetic, not both');
  if (f.synthetic) {
    const seed = int(f.syntheticSeed, '--synthetic-seed', 0);
    return { features: syntheticBimodal({ seed }), source: `synthetic bimodal task (seed ${seed})` };
  }
  if (!f.features) throw new UserError("no data: pass --features <cache folder | arrays.json> (make one with 'emofuse extract'), or --synthetic");
  if (!existsSync(f.features)) throw new UserError(`--features ${f.features}: no such file or folder`);
  try {
    if (statSync(f.features).isDirectory()) return { features: openFeatureCache(f.features), source: `feature cache ${f.features}` };
    return { features: readArraysFile(f.features), source: `arrays file ${f.features}` };
  } catch (err) {
    return asUserError(err);
  }
}

// ------------------------------------------------------------------------------------------ model and training

export interface TrainFlags extends DataFlags {
  backend: string;
  fusion: string;
  width: string;
  heads: string;
  layers: string;
  ffnMult: string;
  dropout: string;
  blockDropout: string;
  linearSkip: string;
  standardize: boolean;
  seed: string;
  epochs: string;
  batchSize: string;
  lr: string;
  minLr: string;
  warmup?: string;
  decay: string;
  weightDecay: string;
  labelSmoothing: string;
  maxGradNorm: string;
  patience: string;
  classWeights: string;
  maxTextLen?: string;
  maxAudioLen?: string;
  trainSplit: string;
  devSplit: string;
  saveEvery: string;
  progress: boolean;
}

/** --backend, the model flags (--fusion unless `withFusion` is false) and the training flags. */
export function addTrainOptions(cmd: Command, withFusion = true): Command {
  const M = DEFAULT_FUSION;
  const T = TRAIN_DEFAULTS;
  const d = (v: number | string) => String(v);
  addBackendOption(cmd);
  if (withFusion) cmd.option('--fusion <variant>', `fusion variant: ${FUSION_VARIANTS.join(', ')}`, M.fusion);
  return cmd
    .option('--width <C>', 'model width C', d(M.width))
    .option('--heads <H>', 'attention heads (C/H must be a multiple of 4, at most 128)', d(M.heads))
    .option('--layers <L>', 'self-attention blocks after the cross-attention', d(M.layers))
    .option('--ffn-mult <m>', 'feed-forward width = m * C', d(M.ffnMult))
    .option('--dropout <p>', 'dropout before the classifier', d(M.dropout))
    .option('--block-dropout <p>', 'dropout of the attention and feed-forward outputs inside every block', d(M.blockDropout))
    .option('--linear-skip <on|off>', "'on': the classifier also reads the linear variant's features (mean + std of each input), so the model contains the linear probe", M.linearSkip ? 'on' : 'off')
    .option('--no-standardize', 'feed the features as they are (default: standardize each input dimension with train-split statistics)')
    .option('--seed <n>', 'seeds initialisation, shuffling and dropout', d(M.seed))
    .option('--epochs <n>', 'passes over the train split', d(T.epochs))
    .option('--batch-size <B>', 'utterances per step', d(T.batchSize))
    .option('--lr <lr>', 'peak learning rate (AdamW)', d(T.lr))
    .option('--min-lr <lr>', 'learning rate at the last step', d(T.minLr))
    .option('--warmup <steps>', `linear warm-up steps (default: ${100 * T.warmupFraction}% of all steps)`)
    .option('--decay <kind>', "'cosine' or 'linear' decay after the warm-up", T.decay)
    .option('--weight-decay <wd>', 'AdamW decoupled weight decay (matrices only)', d(T.weightDecay))
    .option('--label-smoothing <eps>', 'train towards (1 - eps) on the label and eps spread over all classes (0: plain cross-entropy)', d(T.labelSmoothing))
    .option('--max-grad-norm <n>', 'clip the global gradient norm (0: off)', d(T.maxGradNorm))
    .option('--patience <epochs>', 'stop after this many epochs without a better dev weighted F1 (0: never)', d(T.patience))
    .option('--class-weights <w>', "'inverse' (inverse class frequency), 'none', or comma-separated weights", T.classWeights)
    .option('--max-text-len <n>', 'truncate text to n tokens (default: the longest in the data)')
    .option('--max-audio-len <n>', 'truncate audio to n tokens (default: the longest in the data)')
    .option('--train-split <name>', 'split to train on', T.trainSplit)
    .option('--dev-split <name>', 'split for early stopping', T.devSplit)
    .option('--save-every <steps>', 'also checkpoint every n steps (0: at epoch ends only)', d(T.saveEvery))
    .option('--no-progress', 'no progress bar');
}

/** The flags of addTrainOptions as TrainOptions (without --fusion when `withFusion` is false, as for ablate). */
export function parseTrainFlags(o: TrainFlags, outDir: string, withFusion = true): TrainOptions {
  const fusion = withFusion ? userErrors(() => parseFusionVariant(o.fusion, '--fusion')) : undefined;
  if (o.decay !== 'cosine' && o.decay !== 'linear') throw new UserError(`--decay must be 'cosine' or 'linear', got '${o.decay}'`);
  let classWeights: TrainOptions['classWeights'];
  if (o.classWeights === 'inverse' || o.classWeights === 'none') classWeights = o.classWeights;
  else {
    classWeights = o.classWeights.split(',').map((w) => num(w.trim(), '--class-weights'));
    if (!classWeights.some((w) => w > 0)) throw new UserError(`--class-weights: at least one weight must be above 0 (all zero trains nothing), got '${o.classWeights}'`);
  }
  const dropout = num(o.dropout, '--dropout');
  if (dropout >= 1) throw new UserError(`--dropout must be below 1, got ${dropout}`);
  const blockDropout = num(o.blockDropout, '--block-dropout');
  if (blockDropout >= 1) throw new UserError(`--block-dropout must be below 1, got ${blockDropout}`);
  const labelSmoothing = num(o.labelSmoothing, '--label-smoothing');
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new UserError(`--label-smoothing must lie in [0, 1), got ${labelSmoothing}`);
  if (o.linearSkip !== 'on' && o.linearSkip !== 'off') throw new UserError(`--linear-skip must be 'on' or 'off', got '${o.linearSkip}'`);
  return {
    model: {
      ...(fusion ? { fusion } : {}), width: int(o.width, '--width', 1, MAX_WIDTH), heads: int(o.heads, '--heads', 1, MAX_WIDTH), layers: int(o.layers, '--layers', 0, MAX_LAYERS),
      ffnMult: int(o.ffnMult, '--ffn-mult', 1, 64), dropout, blockDropout, linearSkip: o.linearSkip === 'on', seed: int(o.seed, '--seed', 0),
    },
    standardize: o.standardize,
    epochs: int(o.epochs, '--epochs'), batchSize: int(o.batchSize, '--batch-size'), lr: positive(o.lr, '--lr'), minLr: num(o.minLr, '--min-lr'),
    warmup: o.warmup === undefined ? undefined : int(o.warmup, '--warmup'), decay: o.decay,
    weightDecay: num(o.weightDecay, '--weight-decay'), labelSmoothing, maxGradNorm: num(o.maxGradNorm, '--max-grad-norm'), patience: int(o.patience, '--patience', 0),
    classWeights, maxTextLen: o.maxTextLen === undefined ? undefined : int(o.maxTextLen, '--max-text-len'),
    maxAudioLen: o.maxAudioLen === undefined ? undefined : int(o.maxAudioLen, '--max-audio-len'),
    trainSplit: o.trainSplit, devSplit: o.devSplit, outDir, saveEvery: int(o.saveEvery, '--save-every', 0),
  };
}
