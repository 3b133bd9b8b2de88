// Fine-tuning the text encoder end to end (issue 22): the trainable BERT (../fusion/text-encoder.ts, loaded from the
// converted model's ONNX weights) with the fusion model's `text` variant (or another that reads text) on top, reading
// the encoder's token states instead of cached features. The cache gives the utterances, labels and splits; the texts come from the cache's
// dataset (its recorded name and source) and are tokenized here by the model's own tokenizer (so the cache format
// is unchanged). One step, recorded as one graph on ort:
//
//   ids [B, T] --encoder--> h [B, T, C] --copy--> the head's text input --fusion text variant--> loss
//   backward: the head (its own gradients, and d input = d t0 @ Wproj^T into the encoder's output gradient),
//   then the encoder's top k blocks; AdamW on the head at `lr`, on the encoder at `textLr` (layer-wise decay:
//   block l of L gets textLr * decay^(L - 1 - l), the embeddings decay^L), each with its own global-norm clip.
//
// The head reads the states as they are (no input standardization: they leave a LayerNorm) and without the linear
// skip (its statistics would be of frozen features). A head variant that reads audio too (`fusion`, e.g. cross-self)
// gets each utterance's audio features from the cache, standardized by the train split's statistics as `train` does
// (saved with the delta: norm.audio.*). Epoch order and batches derive from (seed, epoch) as `train`'s,
// the head's dropout masks from (seed, step): so a run stopped after any step (FINETUNED_LAST_FILE: every trained
// tensor with both AdamW moments, the step, the epoch's loss sum and the best so far, written atomically at each epoch
// end and at the stop) and resumed ends bit-for-bit where the uninterrupted run does.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bytesOf, decodeSafetensors, encodeSafetensors, type SafeTensor } from '../cache/safetensors.ts';
import { DataError } from '../errors.ts';
import { writeFileAtomic } from '../io.ts';
import { argmax, computeMetrics, type Metrics, softmax } from '../metrics/metrics.ts';
import { openDataset } from '../datasets/index.ts';
import { openFeatureCache } from '../cache/feature-cache.ts';
import { locateModel, withLocation } from '../encoders/transformers.ts';
import { loadTransformers } from '../encoders/transformers-env.ts';
import type { Backend } from '../fusion/backend.ts';
import type { FeatureSet, FeatureSplit } from '../features.ts';
import { computeInputNorm, type InputNorm, type NormStats } from '../fusion/input-norm.ts';
import {
  DEFAULT_FUSION,
  FUSION_SPECS,
  type FusionActivations,
  type FusionConfig,
  FusionModel,
  type FusionSpec,
  type FusionVariant,
} from '../fusion/model.ts';
import { type TextEncoderActs, type TextEncoderConfig, TrainableTextEncoder, savedGeluForm } from '../fusion/text-encoder.ts';
import { readBertWeights } from '../fusion/text-encoder-weights.ts';
import { bucketLength, epochBatches } from './data.ts';
import { learningRate } from './schedule.ts';
import { flagOf, type FlagName } from './settings.ts';

export interface FinetuneTextOptions {
  /** A feature cache extracted with a bert: text encoder (its dataset and splits are used, not its features). */
  features: string;
  /**
   * The utterances as read already (joined caches, `--features A,B`, and a label map: the CLI's loadFeatures and
   * readThroughLabelMap); default: the cache `features` as it is. Texts come from each source cache's dataset.
   */
  featureSet?: FeatureSet;
  /** The label map `featureSet` was read through (--label-map; stored so a resume must give it again). */
  labelMap?: string;
  /** The converted model folder (config.json, tokenizer, onnx/model.onnx). */
  modelFolder: string;
  /** The model spec transformers.js loads the tokenizer by (e.g. sentence-transformers/all-MiniLM-L6-v2). */
  modelSpec: string;
  /** The head (default 'text'); a variant with audio reads the cache's audio features beside the encoder's states. */
  fusion?: FusionVariant;
  /** Blocks trained from the top (layers + 1: all of them and the embeddings). */
  trainTop: number;
  textLr: number;
  /** Layer-wise lr decay per block below the top (1: none). */
  layerDecay: number;
  lr: number;
  epochs: number;
  batchSize: number;
  seed: number;
  width: number;
  heads: number;
  maxTextLen: number;
  weightDecay: number;
  trainSplit?: string;
  /** null: no dev evaluation (timing runs). */
  devSplit?: string | null;
  /** Where the best epoch's weights go (FINETUNED_FILE: the trained encoder tensors as a delta on the base model, and the head). */
  outDir?: string;
  /** Stop after this many train steps (timing). */
  maxSteps?: number;
  /** Continue the run in outDir from its FINETUNED_LAST_FILE (its stored settings must equal these). */
  resume?: boolean;
  /** Start over in an outDir that holds a fine-tuning run (its files are removed). */
  force?: boolean;
  /** Stop after this train step, saving FINETUNED_LAST_FILE (a planned interruption: `resume` continues exactly). */
  stopAfterSteps?: number;
  /** Aborted (Ctrl-C, SIGTERM): stop after the current step, save FINETUNED_LAST_FILE, return with `interrupted`. */
  signal?: AbortSignal;
  /** After each train step: its batch shape and wall seconds (the step's graph run included). */
  onStep?: (r: { step: number; B: number; T: number; seconds: number }) => void;
  onEpoch?: (r: { epoch: number; loss: number; devWeightedF1: number; seconds: number; steps: number }) => void;
}

export interface FinetuneTextResult {
  /** Train steps done (all of them unless interrupted). */
  steps: number;
  /** Stopped by stopAfterSteps or the signal before the last step (FINETUNED_LAST_FILE holds the state). */
  interrupted: boolean;
  bestEpoch: number;
  bestDevWeightedF1: number;
  epochs: { epoch: number; loss: number; devWeightedF1: number; seconds: number }[];
  encoder: TrainableTextEncoder;
  model: FusionModel;
}

/** Token ids and lengths of every utterance of a split, truncated to maxLen (ids unpadded, [CLS] ... [SEP]). */
export interface Tokens {
  ids: number[][];
  labels: Int32Array;
  /** The cache's split of the same utterances (in the same order), for a head that reads their audio too. */
  audio?: FeatureSplit;
}

/** The tokenizer of a bert: model spec: each text's token ids, unpadded and uncut ([CLS] ... [SEP]). */
export async function textTokenizer(spec: string): Promise<(texts: string[]) => Promise<number[][]>> {
  const { AutoTokenizer } = await loadTransformers();
  const tok = (await withLocation(locateModel(spec, 'bert'), (n) => AutoTokenizer.from_pretrained(n))) as unknown as (
    t: string[],
    o: object,
  ) => Promise<Record<string, { data: BigInt64Array; dims: number[] }>>;
  return async (texts) => {
    const out: number[][] = [];
    for (let s = 0; s < texts.length; s += 256) {
      const chunk = texts.slice(s, s + 256);
      const enc = await tok(chunk, { padding: true, truncation: true, max_length: 512 });
      const [B, T] = enc.input_ids!.dims as [number, number];
      for (let b = 0; b < B; b++) {
        const row: number[] = [];
        for (let t = 0; t < T; t++) if (enc.attention_mask!.data[b * T + t]) row.push(Number(enc.input_ids!.data[b * T + t]));
        out.push(row);
      }
    }
    return out;
  };
}

/**
 * The texts of a feature cache's splits, read from the cache's dataset (its recorded name and source), with their
 * ids, labels and class names. Throws naming the cache, the split or the utterance that is missing.
 */
export function cacheTexts(
  features: string,
): (split: string) => { ids: string[]; texts: string[]; labels: Int32Array; classNames: string[] } {
  const cache = openFeatureCache(features);
  const ds = openDataset(cache.index.dataset.name, cache.index.dataset.source, { textOnly: true });
  const textOf = new Map(ds.items.map((it) => [it.id, it.text]));
  return (name) => {
    const sp = cache.splits[name];
    if (!sp) throw new Error(`${features}: no split '${name}' (it has ${Object.keys(cache.splits).join(', ')})`);
    const texts = sp.ids.map((id) => {
      const t = textOf.get(id);
      if (t === undefined) throw new Error(`${cache.index.dataset.source}: no utterance '${id}' (the cache's id)`);
      return t;
    });
    return { ids: [...sp.ids], texts, labels: sp.labels, classNames: [...cache.classNames] };
  };
}

/**
 * The texts of a feature set's utterances, split by split in its order: each source cache's dataset (its recorded name
 * and source) read once, an utterance found by its corpus (a joined set's `corpora`) and id.
 */
export function featureSetTexts(fs: FeatureSet, features: string): (split: string) => string[] {
  type Indexed = { index?: { dataset?: { name?: string; source?: string } } };
  const sources = fs.sources ?? [{ corpus: '', features: fs }];
  const textOf = new Map<string, string>();
  for (const s of sources) {
    const d = (s.features as Indexed).index?.dataset;
    if (!d?.name || !d.source)
      throw new DataError(`${features}: ${s.corpus || 'the features'} are not a feature cache with its dataset (index.json dataset)`);
    const corpus = fs.sources ? s.corpus : '';
    for (const it of openDataset(d.name, d.source, { textOnly: true }).items) textOf.set(`${corpus}\0${it.id}`, it.text);
  }
  return (name) => {
    const sp = fs.splits[name]!;
    return sp.ids.map((id, i) => {
      const t = textOf.get(`${fs.sources ? sp.corpora![i] : ''}\0${id}`);
      if (t === undefined) throw new DataError(`${features}: no text for utterance '${id}' in its dataset (the cache's id)`);
      return t;
    });
  };
}

/** Cuts a token row to maxLen keeping [CLS] first and [SEP] last. */
export function truncateTokens(row: number[], maxLen: number): number[] {
  return row.length <= maxLen ? row : [...row.slice(0, maxLen - 1), row[row.length - 1]!];
}

export async function finetuneText(be: Backend, o: FinetuneTextOptions): Promise<FinetuneTextResult> {
  const fs = o.featureSet ?? openFeatureCache(o.features);
  const textsOf = featureSetTexts(fs, o.features);
  const tokenize = await textTokenizer(o.modelSpec);
  const fusion = o.fusion ?? 'text';
  const spec: FusionSpec = FUSION_SPECS[fusion];
  if (!spec.text || spec.head === 'linear')
    throw new DataError(
      `${flagOf('finetuneText')} trains the text encoder under a head that reads its states: not ${flagOf('fusion')} ${fusion}`,
    );
  // a variant with audio reads it from the feature set (the same utterances, in the same order as their texts)
  const cache = spec.audio ? fs : null;
  if (cache && cache.audioEncoder === 'none')
    throw new DataError(
      `${flagOf('fusion')} ${fusion} reads audio, but ${o.features} has none (audio encoder 'none'): use ${flagOf('fusion')} text`,
    );
  const splitTokens = async (name: string): Promise<Tokens> => {
    const sp = fs.splits[name];
    if (!sp) throw new DataError(`${o.features}: no split '${name}' (it has ${Object.keys(fs.splits).join(', ')})`);
    const ids = (await tokenize(textsOf(name))).map((r) => truncateTokens(r, o.maxTextLen));
    return { ids, labels: sp.labels, ...(cache ? { audio: sp } : {}) };
  };
  const train = await splitTokens(o.trainSplit ?? 'train');
  const dev = o.devSplit === null ? { ids: [], labels: new Int32Array(0) } : await splitTokens(o.devSplit ?? 'dev');
  const classNames = [...fs.classNames];
  const K = classNames.length;
  const { config: ec, weights } = readBertWeights(o.modelFolder);
  const maxLen = bucketLength(Math.max(...train.ids.map((r) => r.length), ...dev.ids.map((r) => r.length)), o.maxTextLen);
  const enc = TrainableTextEncoder.create(be, ec, { trainTop: o.trainTop, maxLen, weights });
  const maxAudioLen = cache ? Math.max(1, ...train.audio!.audioLens, ...(dev.audio?.audioLens ?? [])) : 1;
  const model = FusionModel.create(be, {
    ...DEFAULT_FUSION,
    fusion,
    width: o.width,
    heads: o.heads,
    linearSkip: false,
    textDim: ec.width,
    audioDim: cache ? cache.audioDim : 1,
    maxTextLen: maxLen,
    maxAudioLen,
    numClasses: K,
    seed: o.seed,
  });
  // the audio features standardized as `train` does (the encoder's states are read as they are: they leave a LayerNorm)
  if (cache) {
    const c = model.config;
    const { audio } = computeInputNorm(train.audio!, {
      Tt: 1,
      Ta: maxAudioLen,
      Ct: cache.textDim,
      Ca: c.audioDim,
      text: false,
      audio: true,
    });
    model.setInputNorm({ audio: audio! });
  }
  const stepsPerEpoch = Math.ceil(train.ids.length / o.batchSize);
  const total = stepsPerEpoch * o.epochs;
  const { setBatch, trainStep } = finetuneStepper(be, enc, model, { ...o, totalSteps: total });
  const settings = resumeSettings(o);
  const lastPath = o.outDir ? join(o.outDir, FINETUNED_LAST_FILE) : undefined;
  const bestPath = o.outDir ? join(o.outDir, FINETUNED_FILE) : undefined;
  const state: FinetuneState = { step: 0, epochLossSum: 0, epochSteps: 0, bestEpoch: -1, bestDevWeightedF1: -1, epochs: [], settings };
  if (o.resume) {
    if (!lastPath) throw new DataError(`${flagOf('resume')} needs the run folder (${flagOf('outDir')})`);
    Object.assign(state, loadLast(lastPath, enc, model, settings));
  } else if (lastPath && bestPath) {
    if (!o.force && existsSync(lastPath))
      throw new DataError(
        `${flagOf('outDir')} ${o.outDir} already holds a fine-tuning run (${FINETUNED_LAST_FILE}): continue it with ` +
          `${flagOf('resume')}, start over in it with ${flagOf('force')}, or choose another ${flagOf('outDir')}`,
      );
    for (const f of [lastPath, bestPath]) rmSync(f, { force: true });
  }
  const result: FinetuneTextResult = {
    steps: state.step,
    interrupted: false,
    bestEpoch: state.bestEpoch,
    bestDevWeightedF1: state.bestDevWeightedF1,
    epochs: state.epochs.map((e) => ({ ...e, seconds: 0 })), // epochs before a resume: their time is not kept
    encoder: enc,
    model,
  };
  // the encoders of the features (predict encodes new audio with the same one, as for a checkpoint)
  const encoders = { text: fs.textEncoder, audio: cache ? fs.audioEncoder : 'none' };
  const save = async () => {
    if (lastPath) await saveFinetuned(lastPath, enc, model, { ...o, classNames, encoders, state });
  };
  // what batches are grouped by: tokens per utterance (text, and audio when the head reads it)
  const lengths = Int32Array.from(train.ids, (r, i) => r.length + (train.audio ? Math.min(train.audio.audioLens[i]!, maxAudioLen) : 0));
  let batches = { epoch: -1, list: [] as number[][] };
  let t0 = performance.now();
  while (state.step < total) {
    if (o.signal) await new Promise((r) => setImmediate(r)); // let a pending Ctrl-C arrive
    const step = state.step;
    const epoch = Math.floor(step / stepsPerEpoch);
    const bi = step % stepsPerEpoch;
    if (batches.epoch !== epoch) batches = { epoch, list: epochBatches(lengths, o.batchSize, o.seed, epoch) };
    const ts = performance.now();
    const { B, T, loss } = await trainStep(train, batches.list[bi]!, step);
    state.epochLossSum += loss;
    state.epochSteps++;
    state.step++;
    o.onStep?.({ step, B, T, seconds: (performance.now() - ts) / 1000 });
    const timed = o.maxSteps !== undefined && state.step >= o.maxSteps;
    const stop = (o.stopAfterSteps !== undefined && state.step >= o.stopAfterSteps) || o.signal?.aborted === true;
    if (bi === stepsPerEpoch - 1 || timed) {
      const f1 = dev.ids.length === 0 ? 0 : await evaluateTokens(be, model, setBatch, dev, classNames, o.batchSize);
      const rec = { epoch, loss: state.epochLossSum / Math.max(1, state.epochSteps), devWeightedF1: f1 };
      const seconds = (performance.now() - t0) / 1000;
      result.epochs.push({ ...rec, seconds });
      state.epochs.push(rec);
      o.onEpoch?.({ ...rec, seconds, steps: state.epochSteps });
      Object.assign(state, { epochLossSum: 0, epochSteps: 0 });
      t0 = performance.now();
      if (f1 > state.bestDevWeightedF1) {
        Object.assign(state, { bestDevWeightedF1: f1, bestEpoch: epoch });
        if (bestPath)
          await saveFinetuned(bestPath, enc, model, { ...o, bestEpoch: epoch, devWeightedF1: f1, classNames, encoders, moments: false });
      }
      if (!timed) await save();
    } else if (stop) await save();
    if (timed) break;
    if (stop && state.step < total) {
      result.interrupted = true;
      break;
    }
  }
  await be.flush();
  return { ...result, steps: state.step, bestEpoch: state.bestEpoch, bestDevWeightedF1: state.bestDevWeightedF1 };
}

// ------------------------------------------------------------------------------------------------ resume

/** The file a fine-tuning run keeps its whole state in (each epoch end and each stop): what `resume` reads. */
export const FINETUNED_LAST_FILE = 'finetuned-text-last.safetensors';

/** What a run must be given again to be resumed, each with the setting that names it in messages. */
const RESUME_SAME = {
  fusion: 'fusion',
  modelSpec: 'finetuneText',
  trainTop: 'finetuneText',
  textLr: 'textLr',
  layerDecay: 'layerDecay',
  lr: 'lr',
  epochs: 'epochs',
  batchSize: 'batchSize',
  seed: 'seed',
  width: 'width',
  heads: 'heads',
  maxTextLen: 'maxTextLen',
  weightDecay: 'weightDecay',
  trainSplit: 'trainSplit',
  devSplit: 'devSplit',
  labelMap: 'labelMap',
} as const satisfies Partial<Record<keyof FinetuneTextOptions, FlagName>>;

type ResumeSettings = Record<keyof typeof RESUME_SAME, unknown>;

/** A run's state between steps (the host part; the tensors are beside it in FINETUNED_LAST_FILE). */
interface FinetuneState {
  /** Train steps done. */
  step: number;
  epochLossSum: number;
  epochSteps: number;
  bestEpoch: number;
  bestDevWeightedF1: number;
  epochs: { epoch: number; loss: number; devWeightedF1: number }[];
  settings: ResumeSettings;
}

function resumeSettings(o: FinetuneTextOptions): ResumeSettings {
  const s = Object.fromEntries(Object.keys(RESUME_SAME).map((k) => [k, o[k as keyof FinetuneTextOptions] ?? null]));
  const split = { trainSplit: o.trainSplit ?? 'train', devSplit: o.devSplit === undefined ? 'dev' : o.devSplit };
  return { ...s, ...split, fusion: o.fusion ?? 'text' } as ResumeSettings;
}

/** Reads FINETUNED_LAST_FILE into the encoder and head (values and moments) and returns the state it holds. */
function loadLast(path: string, enc: TrainableTextEncoder, model: FusionModel, settings: ResumeSettings): FinetuneState {
  const resume = flagOf('resume');
  if (!existsSync(path)) throw new DataError(`${resume}: nothing to resume: ${path} does not exist; train without ${resume} first`);
  const redo = `delete it and start again with ${flagOf('force')}`;
  let d: ReturnType<typeof decodeSafetensors>;
  let state: FinetuneState;
  try {
    d = decodeSafetensors(readFileSync(path), path);
    state = JSON.parse(d.metadata.state ?? 'null') as FinetuneState;
    if (!state || typeof state.step !== 'number') throw new Error(`no 'state' in its metadata`);
  } catch (err) {
    throw new DataError(`${resume}: ${path} is damaged (${(err as Error).message}): ${redo}`);
  }
  for (const [k, flag] of Object.entries(RESUME_SAME)) {
    const [was, now] = [state.settings[k as keyof ResumeSettings], settings[k as keyof ResumeSettings]];
    if (JSON.stringify(was) !== JSON.stringify(now)) {
      const what = k === 'modelSpec' ? "the cache's text encoder" : k === 'trainTop' ? `${flagOf(flag)} (blocks trained)` : flagOf(flag);
      throw new DataError(
        `${resume}: the run in ${path} was started with ${what} ${JSON.stringify(was)}, now ${JSON.stringify(now)}: give ` +
          `the run's value to continue it, or start over with ${flagOf('force')}`,
      );
    }
  }
  const f32 = (name: string) => {
    const t = d.tensors.get(name);
    if (!t) throw new DataError(`${resume}: ${path} has no tensor '${name}': ${redo}`);
    return new Float32Array(new Uint8Array(t.data).buffer);
  };
  const be = enc.backend;
  for (const p of enc.trainable) {
    be.write(p.value, f32(`text.${p.name}`));
    be.write(p.m!, f32(`m.text.${p.name}`));
    be.write(p.v!, f32(`v.text.${p.name}`));
  }
  const head = new Map(
    model.params.map((p) => [p.name, { value: f32(`head.${p.name}`), m: f32(`m.head.${p.name}`), v: f32(`v.head.${p.name}`) }]),
  );
  model.loadState(head, state.step);
  return state;
}

/** The audio features [B, Ta, Ca] and mask [B, Ta] of rows idx of a cache split, at their bucketed length. */
export function audioBatch(split: FeatureSplit, idx: readonly number[], maxAudioLen: number) {
  const la = Math.max(...idx.map((i) => split.audioLens[i]!));
  const fb = split.batch(idx, { rows: idx.length, Tt: 1, Ta: bucketLength(Math.max(1, la), maxAudioLen) });
  return { audio: fb.audio, audioMask: fb.audioMask };
}

/**
 * Writes one batch of token ids [B, T] (mask [B, T]: 1 token, 0 padding) into the encoder and the head, and records the
 * encoder's forward with its states copied into the head's text input, which the head's forward then reads: where the
 * two meet, for training, prediction and the ONNX export (export/fusion-onnx.ts traces this) alike.
 */
export async function encodeBatch(
  enc: TrainableTextEncoder,
  model: FusionModel,
  ids: ArrayLike<number>,
  mask: Float32Array,
  B: number,
  labels: ArrayLike<number>,
  audio?: { audio: Float32Array; audioMask: Float32Array },
): Promise<{ ea: TextEncoderActs; ha: FusionActivations }> {
  const T = ids.length / B;
  const ea = enc.setInputs(ids, mask, B);
  const ha = model.setInputs(
    {
      text: new Float32Array(B * T * enc.config.width),
      textMask: mask,
      audio: audio?.audio ?? new Float32Array(B), // [B, Ta, Ca], or [B, 1, 1] empty for a text-only head
      audioMask: audio?.audioMask ?? new Float32Array(B),
      labels: Array.from(labels),
    },
    new Float32Array(model.config.numClasses).fill(1),
  );
  await enc.forward(ea); // h [B, T, C]
  await enc.backend.add(ea.out, ea.out, ha.text!.x, 0); // the head's input [B, T, C] = h (what setInputs wrote is replaced)
  return { ea, ha };
}

/**
 * One fine-tuning step of encoder + head (recorded as one graph on ort) and the batch writer it uses: `trainStep`
 * packs rows `idx` of `tok` at their bucketed length, runs forward, backward and both AdamW updates at step `step`
 * of `totalSteps` (linear warm-up over 10%, then linear decay), and returns the batch shape and its loss.
 */
export function finetuneStepper(
  be: Backend,
  enc: TrainableTextEncoder,
  model: FusionModel,
  o: Pick<FinetuneTextOptions, 'lr' | 'textLr' | 'layerDecay' | 'weightDecay'> & { totalSteps: number },
) {
  const ec = enc.config;
  const maxLen = model.config.maxTextLen;
  const proj = model.params.find((p) => p.name === 'text.proj.w')!; // [Ct, C]
  const C = ec.width;

  /** Writes one batch into both models and copies the encoder's states into the head's input (all inside the step). */
  const setBatch = async (tok: Tokens, idx: readonly number[]) => {
    const B = idx.length;
    const T = bucketLength(Math.max(...idx.map((i) => tok.ids[i]!.length)), maxLen);
    const ids = new Float32Array(B * T);
    const mask = new Float32Array(B * T);
    idx.forEach((i, b) => {
      tok.ids[i]!.forEach((id, t) => {
        ids[b * T + t] = id;
        mask[b * T + t] = 1;
      });
    });
    const { ea, ha } = await encodeBatch(
      enc,
      model,
      ids,
      mask,
      B,
      idx.map((i) => tok.labels[i]!),
      tok.audio && audioBatch(tok.audio, idx, model.config.maxAudioLen),
    );
    return { ea, ha, B, T };
  };

  const steps = o.totalSteps;
  const warmup = Math.max(1, Math.round(0.1 * steps));
  const encParams = enc.trainable;
  const encNorm = be.zeros([1], 'text grad norm');
  const L = ec.layers;
  const trainStep = async (tok: Tokens, idx: readonly number[], step: number) => {
    await be.flush();
    const { ea, ha, B, T } = await setBatch(tok, idx);
    await model.forward(ha, true, true);
    await model.backward(ha, true);
    // d h = d t0 [B*T, C] @ Wproj^T, into the encoder's output gradient
    await be.matmulBackward(
      { dc: ha.text!.dh, a: ha.text!.x, b: proj.value, dA: ea.dout },
      { batch: 1, M: B * T, N: model.config.width, K: C },
    );
    await enc.backward(ea);
    const sched = { minLr: 0, warmup, total: steps, decay: 'linear' as const };
    await model.optimizerStep(ha as FusionActivations, {
      lr: learningRate(step, { ...sched, lr: o.lr }),
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: o.weightDecay,
      maxGradNorm: 1,
    });
    if (encParams.length) {
      await be.gradNorm(
        encParams.map((p) => p.grad!),
        encNorm,
      );
      const base = learningRate(step, { ...sched, lr: o.textLr });
      for (const p of encParams) {
        const depth = p.layer < 0 ? L : L - 1 - p.layer; // blocks below the top
        await be.adamw(p.value, p.grad!, p.m!, p.v!, {
          lr: base * o.layerDecay ** depth,
          step: step + 1,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: p.decay ? o.weightDecay : 0,
          clip: { norm: encNorm, maxNorm: 1 },
        });
      }
    }
    const loss = await model.readLoss(ha); // runs the step
    return { B, T, loss };
  };
  return { setBatch, trainStep };
}

/** Weighted F1 on a split, no dropout, in length-sorted batches. */
async function evaluateTokens(
  be: Backend,
  model: FusionModel,
  setBatch: (tok: Tokens, idx: readonly number[]) => Promise<{ ha: FusionActivations }>,
  tok: Tokens,
  classNames: readonly string[],
  B: number,
): Promise<number> {
  const K = classNames.length;
  const order = tok.ids.map((r, i) => [r.length, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const predictions = new Array<number>(tok.ids.length);
  for (let s = 0; s < order.length; s += B) {
    const idx = order.slice(s, s + B).map(([, i]) => i);
    await be.flush();
    const { ha } = await setBatch(tok, idx);
    await model.forward(ha, false, false);
    const logits = await be.read(ha.logits);
    idx.forEach((i, r) => {
      predictions[i] = argmax(logits, r * K, K);
    });
  }
  return computeMetrics(tok.labels, predictions, classNames).weightedF1;
}

// ------------------------------------------------------------------------------------------------ weights

/** The file finetuneText writes at its best epoch. */
export const FINETUNED_FILE = 'finetuned-text.safetensors';

/**
 * The fine-tuned weights as a delta on the base model: the encoder tensors that trained ('text.<HF name>', the frozen
 * ones are the base model's, named by `modelSpec` in the metadata) and every head tensor ('head.<name>'), with the
 * encoder's trainTop and the head's FusionConfig in the metadata. With `state` (FINETUNED_LAST_FILE) also both AdamW
 * moments of each ('m.text.<name>', 'v.head.<name>', ...) and the run's state: what resuming needs.
 */
async function saveFinetuned(
  path: string,
  enc: TrainableTextEncoder,
  model: FusionModel,
  o: Pick<FinetuneTextOptions, 'modelSpec' | 'trainTop' | 'seed' | 'labelMap'> & {
    classNames: string[];
    encoders: { text: string; audio: string };
  } & ({ bestEpoch: number; devWeightedF1: number; moments: false } | { state: FinetuneState }),
): Promise<void> {
  const tensors: Record<string, SafeTensor> = {};
  const be = enc.backend;
  const moments = 'state' in o;
  const put = (name: string, shape: number[], v: ArrayLike<number>) => {
    tensors[name] = { dtype: 'F32', shape, data: bytesOf(Float32Array.from(v)) };
  };
  for (const p of enc.trainable) {
    put(`text.${p.name}`, p.shape, await be.read(p.value));
    if (moments) {
      put(`m.text.${p.name}`, p.shape, await be.read(p.m!));
      put(`v.text.${p.name}`, p.shape, await be.read(p.v!));
    }
  }
  for (const [name, st] of Object.entries(model.inputNorm ?? {})) {
    put(`norm.${name}.mean`, [st.mean.length], st.mean); // the head's input standardization (audio)
    put(`norm.${name}.std`, [st.std.length], st.std);
  }
  for (const [name, t] of await model.readState()) {
    put(`head.${name}`, t.shape, t.value);
    if (moments) {
      put(`m.head.${name}`, t.shape, t.m);
      put(`v.head.${name}`, t.shape, t.v);
    }
  }
  const metadata: Record<string, string> = {
    format: 'emofuse-finetuned-text',
    modelSpec: o.modelSpec,
    trainTop: String(o.trainTop),
    gelu: enc.config.gelu, // the encoder's GELU form (savedGeluForm reads it; none recorded: tanh)
    head: JSON.stringify(model.config),
    classNames: JSON.stringify(o.classNames),
    textEncoder: o.encoders.text, // the cache's (its bert: spec); the delta's own encoder replaces it
    audioEncoder: o.encoders.audio, // what predict encodes new audio with ('none': a text head)
    ...(o.labelMap !== undefined ? { labelMap: o.labelMap } : {}), // what eval reads the features through
    ...('state' in o
      ? { bestEpoch: String(o.state.bestEpoch), devWeightedF1: String(o.state.bestDevWeightedF1), state: JSON.stringify(o.state) }
      : { bestEpoch: String(o.bestEpoch), devWeightedF1: String(o.devWeightedF1) }),
  };
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** A fine-tuned text model's file read: the head (config, parameters) and the encoder (the base model's weights with the delta's). */
export interface FinetunedFile {
  modelSpec: string;
  classNames: string[];
  head: FusionConfig;
  headParams: Map<string, { shape: number[]; data: Float32Array }>;
  /** The head's input standardization (a head that reads audio: its features'), or null. */
  norm: InputNorm | null;
  /** The label map the training features were read through (--label-map), if any. */
  labelMap?: string;
  /**
   * The audio encoder of the features it was trained on (as `emofuse extract` names it, e.g. 'logmel'; 'none': a text
   * head), or undefined in a delta written before deltas recorded it.
   */
  audioEncoder?: string;
  encoder: { config: TextEncoderConfig; weights: Map<string, Float32Array> };
}

/** Reads FINETUNED_FILE (or FINETUNED_LAST_FILE) over the base model in modelFolder (default: located by its modelSpec). */
export function readFinetunedFile(file: string, modelFolder?: string): FinetunedFile {
  const d = decodeSafetensors(readFileSync(file), file);
  if (d.metadata.format !== 'emofuse-finetuned-text') throw new Error(`${file}: not a fine-tuned text model (metadata 'format')`);
  const spec = d.metadata.modelSpec;
  if (!spec) throw new Error(`${file}: no 'modelSpec' in its metadata (the base text model it is a delta on)`);
  const folder = modelFolder ?? locateModel(spec, 'bert').folder;
  if (!folder) throw new Error(`${file}: its base text model '${spec}' is not a local folder (put the converted model in EMOFUSE_MODELS)`);
  const { config, weights } = readBertWeights(folder);
  const f32 = (t: SafeTensor) => new Float32Array(new Uint8Array(t.data).buffer); // a copy (data may be a Buffer view)
  const headParams = new Map<string, { shape: number[]; data: Float32Array }>();
  const norm: Record<string, Partial<NormStats>> = {};
  for (const [name, t] of d.tensors) {
    if (name.startsWith('text.')) weights.set(name.slice(5), f32(t));
    else if (name.startsWith('head.')) headParams.set(name.slice(5), { shape: t.shape, data: f32(t) });
    const n = /^norm\.(\w+)\.(mean|std)$/.exec(name);
    if (n) norm[n[1]!] = { ...norm[n[1]!], [n[2]!]: f32(t) };
  }
  const head = JSON.parse(d.metadata.head!) as FusionConfig;
  const K = head.numClasses;
  const classNames = d.metadata.classNames
    ? (JSON.parse(d.metadata.classNames) as string[])
    : Array.from({ length: K }, (_, k) => `class ${k}`);
  const gelu = savedGeluForm(d.metadata, file); // a delta trained with tanh runs with tanh
  const inputNorm = Object.keys(norm).length ? (norm as InputNorm) : null;
  const labelMap = d.metadata.labelMap;
  const audioEncoder = d.metadata.audioEncoder;
  return {
    modelSpec: spec,
    classNames,
    head,
    headParams,
    norm: inputNorm,
    ...(labelMap !== undefined ? { labelMap } : {}),
    ...(audioEncoder !== undefined ? { audioEncoder } : {}),
    encoder: { config: { ...config, gelu }, weights },
  };
}

/** A fine-tuned text model read back: the base model's weights with the delta's encoder tensors, and the head. */
export function loadFinetuned(be: Backend, file: string, modelFolder?: string): { encoder: TrainableTextEncoder; model: FusionModel } {
  return onBackend(be, readFinetunedFile(file, modelFolder));
}

function onBackend(be: Backend, f: FinetunedFile): { encoder: TrainableTextEncoder; model: FusionModel } {
  const encoder = TrainableTextEncoder.create(be, f.encoder.config, { weights: f.encoder.weights, maxLen: f.head.maxTextLen });
  const model = FusionModel.create(be, f.head);
  model.loadState(new Map([...f.headParams].map(([n, t]) => [n, { value: t.data }])), 0);
  model.setInputNorm(f.norm);
  return { encoder, model };
}

/** Class probabilities [n][K] of texts through a fine-tuned (or any) encoder + head, one batch of at most B at a time. */
export async function predictTexts(
  be: Backend,
  m: { encoder: TrainableTextEncoder; model: FusionModel },
  modelSpec: string,
  texts: readonly string[],
  B = 32,
): Promise<number[][]> {
  const rows = await tokenizeTexts(modelSpec, texts, m.model.config.maxTextLen);
  const K = m.model.config.numClasses;
  return (await predictTokens(be, m, rows, B)).map((l) => softmax(l, 0, K));
}

/** Token rows of texts by the tokenizer of `modelSpec`, each cut to maxLen ([CLS] ... [SEP]). */
export async function tokenizeTexts(modelSpec: string, texts: readonly string[], maxLen: number): Promise<number[][]> {
  const tokenize = await textTokenizer(modelSpec);
  return (await tokenize([...texts])).map((r) => truncateTokens(r, maxLen));
}

/** The audio features [B, Ta, Ca] and mask [B, Ta] of rows idx (of the rows given to predictTokens). */
export type AudioOf = (idx: readonly number[]) => { audio: Float32Array; audioMask: Float32Array };

/**
 * Logits [n][K] of token rows (unpadded, at most the head's maxTextLen) through encoder + head, B rows a batch; a head
 * that reads audio gets each batch's from `audioOf` (e.g. a cache split's: `(idx) => audioBatch(split, idx, maxAudioLen)`).
 */
export async function predictTokens(
  be: Backend,
  m: { encoder: TrainableTextEncoder; model: FusionModel },
  rows: readonly (readonly number[])[],
  B = 32,
  audioOf?: AudioOf,
): Promise<number[][]> {
  if (m.model.spec.audio && !audioOf)
    throw new Error(`a fine-tuned ${m.model.config.fusion} model reads audio features too: give them (the cache it was trained on)`);
  const maxLen = m.model.config.maxTextLen;
  const K = m.model.config.numClasses;
  const out: number[][] = [];
  for (let s = 0; s < rows.length; s += B) {
    const chunk = rows.slice(s, s + B);
    const n = chunk.length;
    const T = bucketLength(Math.max(...chunk.map((r) => r.length)), maxLen);
    const [ids, mask] = [new Float32Array(n * T), new Float32Array(n * T)];
    chunk.forEach((r, b) => {
      r.forEach((id, t) => {
        ids[b * T + t] = id;
        mask[b * T + t] = 1;
      });
    });
    await be.flush();
    const idx = chunk.map((_, b) => s + b);
    const audio = m.model.spec.audio ? audioOf!(idx) : undefined;
    const { ha } = await encodeBatch(m.encoder, m.model, ids, mask, n, new Array(n).fill(-1), audio);
    await m.model.forward(ha, false, false);
    const logits = await be.read(ha.logits);
    for (let b = 0; b < n; b++) out.push(Array.from(logits.subarray(b * K, (b + 1) * K)));
  }
  return out;
}

/** A fine-tuned text model's metadata (modelSpec, classNames, head, labelMap, ...), without reading its base model. */
export function finetunedMetadata(file: string): Record<string, string> {
  return decodeSafetensors(readFileSync(file), file).metadata;
}

/** Whether a .safetensors file is a fine-tuned text model (FINETUNED_FILE), from its header alone. */
export function isFinetunedText(file: string): boolean {
  let header: { __metadata__?: { format?: string } };
  try {
    const buf = readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    if (n <= 0 || n > buf.length - 8) return false;
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    return false; // not readable as safetensors: the ordinary checkpoint reader says why
  }
  return header.__metadata__?.format === 'emofuse-finetuned-text';
}

/** A fine-tuned text model read back with its base model located by the spec it names (the model folder, by id or path). */
export function openFinetuned(
  be: Backend,
  file: string,
): { encoder: TrainableTextEncoder; model: FusionModel; modelSpec: string; classNames: string[]; audioEncoder?: string } {
  const f = readFinetunedFile(file);
  const audio = f.audioEncoder !== undefined ? { audioEncoder: f.audioEncoder } : {};
  return { ...onBackend(be, f), modelSpec: f.modelSpec, classNames: f.classNames, ...audio };
}

/**
 * A fine-tuned text model on a split of a cache (its texts, and its audio for a head that reads it), or of `featureSet`
 * (joined caches read through the model's label map: the CLI's loadFeatures and readThroughLabelMap): every
 * utterance's class probabilities, and the metrics.
 */
export async function evaluateFinetuned(
  be: Backend,
  o: { file: string; features: string; split: string; batchSize: number; featureSet?: FeatureSet },
): Promise<{ ids: string[]; probabilities: number[][]; metrics: Metrics }> {
  const m = openFinetuned(be, o.file);
  const fs = o.featureSet ?? openFeatureCache(o.features);
  const sp = fs.splits[o.split];
  if (!sp) throw new DataError(`${o.features}: no split '${o.split}' (it has ${Object.keys(fs.splits).join(', ')})`);
  const c = m.model.config;
  const K = c.numClasses;
  if (fs.classNames.length !== K)
    throw new Error(`${o.features}: ${fs.classNames.length} classes, but ${o.file} was trained on ${K}: give the cache it was trained on`);
  const rows = await tokenizeTexts(m.modelSpec, featureSetTexts(fs, o.features)(o.split), c.maxTextLen);
  let audioOf: AudioOf | undefined;
  if (m.model.spec.audio) {
    if (fs.audioDim !== c.audioDim)
      throw new Error(`${o.features}: audio features of ${fs.audioDim} dimensions, ${o.file} reads ${c.audioDim}`);
    audioOf = (idx) => audioBatch(sp, idx, c.maxAudioLen);
  }
  const probabilities = (await predictTokens(be, m, rows, o.batchSize, audioOf)).map((l) => softmax(l, 0, K));
  const predictions = probabilities.map((p) => argmax(p, 0, K));
  return { ids: [...sp.ids], probabilities, metrics: computeMetrics(sp.labels, predictions, fs.classNames) };
}
