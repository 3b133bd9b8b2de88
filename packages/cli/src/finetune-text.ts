// The CLI side of fine-tuning the text encoder (issue 22; the work is the model's train/finetune-text.ts):
// `train --finetune-text <k|all>` checks that the run is one finetuneText can do (a text-only head on a feature cache
// of a bert: text encoder whose dataset has the texts) and runs it; `eval` on the file it writes (FINETUNED_FILE)
// reads the fine-tuned encoder back (`predict` and `analyze` do through the Predictor, as for any checkpoint); --resume
// continues a stopped run from FINETUNED_LAST_FILE exactly. Each refusal names the flag and what works instead (exit 2).

import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Backend,
  DEFAULT_FUSION,
  evaluateFinetuned,
  FINETUNED_FILE,
  FINETUNED_LAST_FILE,
  finetuneText,
  flagOf,
  FUSION_SPECS,
  type FusionVariant,
  locateModel,
  featureSetTexts,
  checkTokenOnnxAgainstModel,
  ExportError,
  exportFinetunedToOnnx,
  loadFinetuned,
  ONNX_OUTPUTS,
  ONNX_TOKEN_INPUTS,
  randomTokenRows,
  readThroughLabelMap,
  finetunedMetadata,
  randomAudioOf,
  audioBatch,
  type AudioOf,
  tokenizeTexts,
  writeFileAtomic,
  TRAIN_DEFAULTS,
  TRAIN_SETTINGS,
  type TrainOptions,
  type TrainSettingName,
} from '@emofuse/model';
import { asUserError, type DataFlags, loadFeatures, openBackend } from './options.ts';
import { UserError } from './output.ts';

/** Settings finetuneText does not read: given with another value than the default, the run is refused naming them. */
const UNUSED: readonly TrainSettingName[] = [
  'layers',
  'ffnMult',
  'dropout',
  'blockDropout',
  'linearSkip',
  'minLr',
  'warmup',
  'decay',
  'labelSmoothing',
  'maxGradNorm',
  'classWeights',
  'maxAudioLen',
  'modalityDropout',
  'selectBy',
  'balance',
  'speakerNorm',
  'speakerNormMix',
  'saveEvery',
];

export interface FinetunePlan {
  features: string;
  fusion: FusionVariant;
  modelFolder: string;
  modelSpec: string;
  trainTop: number;
}

/** The fine-tuning run `train --finetune-text` asked for, or a UserError naming the flag that cannot go with it. */
export function planFinetune(o: TrainOptions, f: { features?: string; synthetic?: boolean }): FinetunePlan {
  const flag = flagOf('finetuneText');
  const fusion = o.model?.fusion ?? DEFAULT_FUSION.fusion;
  const spec = FUSION_SPECS[fusion];
  if (!spec.text || spec.head === 'linear')
    throw new UserError(
      `${flag} trains the text encoder under a head that reads its states: give ${flagOf('fusion')} text or a text + audio ` +
        `variant such as cross-self (got ${flagOf('fusion')} ${fusion})`,
    );
  // one cache folder, or several joined (--features A,B: a path that exists as given is one source, as loadFeatures reads it)
  const paths = !f.features
    ? []
    : existsSync(f.features)
      ? [f.features]
      : f.features
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean);
  if (f.synthetic || !paths.length || paths.some((p) => p.endsWith('.json') || !existsSync(join(p, 'index.json'))))
    throw new UserError(
      `${flag} needs --features <feature cache folder[,another,...]> extracted with a bert: text encoder ` +
        `(e.g. 'emofuse extract --dataset meld --text-encoder bert:sentence-transformers/all-MiniLM-L6-v2'); ` +
        `not --synthetic or an arrays .json${f.features ? ` (got '${f.features}')` : ''}`,
    );
  const defaults = TRAIN_DEFAULTS as Record<string, unknown>;
  for (const k of UNUSED) {
    const s = TRAIN_SETTINGS[k];
    const v = s.in === 'model' ? (o.model as Record<string, unknown> | undefined)?.[k] : (o as unknown as Record<string, unknown>)[k];
    const def = s.in === 'model' ? (DEFAULT_FUSION as unknown as Record<string, unknown>)[k] : defaults[k];
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(def))
      throw new UserError(`${s.flag} does not apply to ${flag} runs (the fine-tuning recipe has none): leave it out`);
  }
  type Index = { text?: { id?: string }; audio?: { id?: string } };
  const indexes = paths.map((p) => JSON.parse(readFileSync(join(p, 'index.json'), 'utf8')) as Index);
  if (spec.audio && indexes.every((index) => (index.audio?.id ?? 'none') === 'none'))
    throw new UserError(
      `${flag} with ${flagOf('fusion')} ${fusion}: ${f.features} has no audio features (audio encoder 'none'): give a cache ` +
        `extracted with an audio encoder, or ${flagOf('fusion')} text`,
    );
  const id = indexes[0]!.text?.id ?? ''; // joined caches share it (loadFeatures refuses others)
  if (!id.startsWith('bert:'))
    throw new UserError(
      `${flag}: ${paths[0]}/index.json text.id is '${id}', not a bert: encoder: extract the cache with ` +
        `--text-encoder bert:<model> (e.g. bert:sentence-transformers/all-MiniLM-L6-v2)`,
    );
  const modelSpec = id.slice(5);
  const modelFolder = userError(() => locateModel(modelSpec, 'bert')).folder;
  if (!modelFolder)
    throw new UserError(`${flag}: the cache's text encoder '${modelSpec}' is not a local model folder: convert it into EMOFUSE_MODELS`);
  const layers = (JSON.parse(readFileSync(join(modelFolder, 'config.json'), 'utf8')) as { num_hidden_layers: number }).num_hidden_layers;
  const k = o.finetuneText!;
  if (k !== 'all' && k > layers + 1)
    throw new UserError(
      `${flag} ${k}: ${modelSpec} has ${layers} blocks: give 1 to ${layers}, ${layers + 1} or 'all' (blocks + embeddings)`,
    );
  return { features: f.features!, modelFolder, modelSpec, fusion, trainTop: k === 'all' ? layers + 1 : k };
}

/** The model's errors here are about the user's files (a missing split, utterance or model folder): a message, exit 2. */
function userError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw e instanceof UserError ? e : new UserError((e as Error).message);
  }
}
const asMessage = (e: unknown): never => userError(() => asUserError(e));

/**
 * Runs the fine-tuning; the best epoch goes to <out>/FINETUNED_FILE, the state to FINETUNED_LAST_FILE (each epoch end and
 * at a stop: --stop-after-steps, Ctrl-C); `resume` continues from it bit-for-bit, `force` starts over.
 */
export async function runFinetune(
  be: Backend,
  o: TrainOptions,
  plan: FinetunePlan,
  out: string,
  log: (line: string) => void,
  run: { resume?: boolean; force?: boolean; signal?: AbortSignal } = {},
): Promise<{
  file: string;
  last: string;
  steps: number;
  interrupted: boolean;
  bestEpoch: number;
  bestDevWeightedF1: number;
  epochs: number;
  seconds: number;
}> {
  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  // the utterances as train reads them: joined caches (--features A,B) and --label-map
  const featureSet = readThroughLabelMap(loadFeatures({ features: plan.features } as DataFlags).features, o.labelMap);
  const r = await finetuneText(be, {
    ...plan,
    featureSet,
    ...(o.labelMap !== undefined ? { labelMap: o.labelMap } : {}),
    textLr: o.textLr ?? TRAIN_DEFAULTS.textLr,
    layerDecay: o.layerDecay ?? TRAIN_DEFAULTS.layerDecay,
    lr: o.lr ?? TRAIN_DEFAULTS.lr,
    epochs: o.epochs ?? TRAIN_DEFAULTS.epochs,
    batchSize: o.batchSize ?? TRAIN_DEFAULTS.batchSize,
    seed: o.model?.seed ?? DEFAULT_FUSION.seed,
    width: o.model?.width ?? DEFAULT_FUSION.width,
    heads: o.model?.heads ?? DEFAULT_FUSION.heads,
    maxTextLen: o.maxTextLen ?? 512,
    weightDecay: o.weightDecay ?? TRAIN_DEFAULTS.weightDecay,
    trainSplit: o.trainSplit ?? TRAIN_DEFAULTS.trainSplit,
    devSplit: o.devSplit ?? TRAIN_DEFAULTS.devSplit,
    outDir: out,
    ...run,
    ...(o.stopAfterSteps !== undefined ? { stopAfterSteps: o.stopAfterSteps } : {}),
    onEpoch: (e) =>
      log(
        `epoch ${e.epoch}: train loss ${e.loss.toFixed(4)}  dev weighted F1 ${(100 * e.devWeightedF1).toFixed(1)}  ` +
          `(${e.seconds.toFixed(0)} s)`,
      ),
  }).catch(asMessage);
  return {
    file: join(out, FINETUNED_FILE),
    last: join(out, FINETUNED_LAST_FILE),
    steps: r.steps,
    interrupted: r.interrupted,
    bestEpoch: r.bestEpoch,
    bestDevWeightedF1: r.bestDevWeightedF1,
    epochs: r.epochs.length,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** eval on a fine-tuned text model: its metrics on a split of a cache, and each utterance's class probabilities. */
export async function evalFinetuned(be: Backend, o: { checkpoint: string; features?: string; split: string; batchSize: number }) {
  if (!o.features) throw new UserError(`${o.checkpoint} is a fine-tuned text model: give --features <the cache it was trained on>`);
  // the features as training read them: joined caches (--features A,B), through the label map the model records
  const { labelMap } = userError(() => finetunedMetadata(o.checkpoint));
  const featureSet = readThroughLabelMap(loadFeatures({ features: o.features } as DataFlags).features, labelMap);
  const r = { file: o.checkpoint, features: o.features, split: o.split, batchSize: o.batchSize, featureSet };
  return evaluateFinetuned(be, r).catch(asMessage);
}

/**
 * export on a fine-tuned text model: the ONNX graph with its encoder (token ids in), checked against our forward of the
 * same file (--backend) on seeded random token rows or the --features cache's texts (split --split) before it is written.
 */
export async function exportFinetuned(o: {
  checkpoint: string;
  onnx: string;
  backend: string;
  features?: string;
  split: string;
  n: number;
  tolerance: number;
  json?: boolean;
}): Promise<void> {
  const exported = await exportFinetunedToOnnx(o.checkpoint, typeof EMOFUSE_VERSION === 'string' ? EMOFUSE_VERSION : 'dev').catch(
    (err: unknown) => asMessage(err instanceof ExportError ? new UserError(err.message) : err),
  );
  const { onnx, meta, file } = exported;
  const maxLen = file.head.maxTextLen;
  const c = file.head;
  const audio = FUSION_SPECS[c.fusion].audio; // a head that reads audio is checked with audio features beside the tokens
  let rows: number[][];
  let source: string;
  let audioOf: AudioOf | undefined;
  if (o.features) {
    // the features as training read them (joined caches, the model's label map), as eval reads them
    const fs = readThroughLabelMap(loadFeatures({ features: o.features } as DataFlags).features, file.labelMap);
    const split = fs.splits[o.split];
    if (!split) throw new UserError(`--split ${o.split}: ${o.features} has splits ${Object.keys(fs.splits).join(', ')}`);
    const texts = userError(() => featureSetTexts(fs, o.features!)(o.split));
    rows = await tokenizeTexts(file.modelSpec, texts.slice(0, o.n), maxLen).catch(asMessage);
    source = `${rows.length} texts${audio ? ' and their audio' : ''} of ${o.features}, split '${o.split}'`;
    if (audio) {
      if (fs.audioDim !== c.audioDim)
        throw new UserError(
          `--features ${o.features}: its audio features have ${fs.audioDim} dimensions, ${o.checkpoint} reads ${c.audioDim}`,
        );
      audioOf = (idx) => audioBatch(split, idx, c.maxAudioLen);
    }
  } else {
    rows = randomTokenRows(file.encoder.config.vocab, maxLen, o.n);
    source = `${o.n} seeded random token rows (1..${maxLen} tokens)${audio ? ` with random audio (1..${c.maxAudioLen} tokens)` : ''}`;
    if (audio) audioOf = randomAudioOf(o.n, c.audioDim, c.maxAudioLen);
  }
  const backend = await openBackend(o.backend);
  let check: Awaited<ReturnType<typeof checkTokenOnnxAgainstModel>>;
  try {
    const m = userError(() => loadFinetuned(backend, o.checkpoint));
    check = await checkTokenOnnxAgainstModel(onnx, m, rows, 8, audioOf).catch(asMessage);
  } finally {
    await backend.destroy();
  }
  const ok = check.maxAbsLogits <= o.tolerance;
  if (ok) writeFileAtomic(o.onnx, onnx);
  const tokenizer = `bert:${file.modelSpec}`;
  const result = {
    onnx: ok ? o.onnx : null,
    bytes: onnx.length,
    fusion: meta.config.fusion,
    classNames: meta.classNames,
    textEncoder: meta.textEncoder,
    tokenizer,
    inputs: ONNX_TOKEN_INPUTS,
    outputs: ONNX_OUTPUTS,
    check: { ...check, source, tolerance: o.tolerance, ok },
  };
  if (o.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(
      `${o.checkpoint}: fine-tuned text model (${file.encoder.config.layers} encoder blocks in the graph), ${meta.classNames.length} ` +
        `classes (${meta.classNames.join(', ')}); input_ids from the tokenizer of ${tokenizer}`,
    );
    console.log(`check: ${check.utterances} token rows (${source})`);
    console.log(
      `  onnxruntime CPU vs our forward (${check.backend}): max |logit diff| ${check.maxAbsLogits.toExponential(2)}, max ` +
        `|probability diff| ${check.maxAbsProbabilities.toExponential(2)}, top class differs on ${check.argmaxDisagreements}`,
    );
    if (ok)
      console.log(
        `wrote ${o.onnx} (${(statSync(o.onnx).size / 1024).toFixed(0)} KiB; inputs ${ONNX_TOKEN_INPUTS.join(', ')}; outputs ` +
          `${ONNX_OUTPUTS.join(', ')})`,
      );
  }
  if (!ok)
    throw new UserError(
      `the ONNX model disagrees with our forward: max |logit diff| ${check.maxAbsLogits.toExponential(2)} > --tolerance ` +
        `${o.tolerance}; nothing written`,
    );
}
