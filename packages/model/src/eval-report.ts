// A checkpoint scored on one split of a feature set, and the report written beside it: metrics.json,
// confusion.json, confusion.svg, confusion.png and predictions.jsonl. What `emofuse eval` runs and prints.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkCheckpointFeatures } from './compat.ts';
import type { FeatureSet, FeatureSplit, SpeakerNormReport } from './features.ts';
import type { Backend } from './fusion/backend.ts';
import { writeFileAtomic } from './io.ts';
import { confusionSvg, svgToPng } from './metrics/confusion-plot.ts';
import { computeMetrics, type Metrics } from './metrics/metrics.ts';
import { labelMapFromJSON, sameLabelMap } from './datasets/label-map.ts';
import { mapFeatureSet, standardizeSpeakers, withJoinedSplits } from './datasets/feature-sets.ts';
import { checkpointSpeakerFallback, trainedWithSpeakerNorm } from './fusion/input-norm.ts';
import { loadCheckpoint, type CheckpointMeta } from './train/checkpoint.ts';
import { DataError } from './errors.ts';
import { evaluate } from './train/trainer.ts';
import type { FusionConfig } from './fusion/model.ts';

export const EVAL_REPORT_FILES = ['metrics.json', 'confusion.json', 'confusion.svg', 'confusion.png', 'predictions.jsonl'] as const;

/** metrics.json: where the numbers come from, then the metrics. */
export interface EvalReport extends Metrics {
  checkpoint: string;
  data: string;
  split: string;
  fusion: FusionConfig['fusion'];
  step: number;
  /** Features joined from several caches: the scores of each source corpus on its own (the metrics above are all of them). */
  perCorpus?: CorpusScores[];
  /**
   * The checkpoint was trained with --speaker-norm: how many utterances got their speaker's statistics, how many the train statistics only.
   */
  speakerNorm?: SpeakerNormReport;
  /** A model with a learned mix of audio layers (Whisper '@all'): its weights, layer 0 (the embeddings) first. */
  layerMix?: number[];
}

/** One source corpus's share of a split and its scores. */
export interface CorpusScores {
  corpus: string;
  n: number;
  accuracy: number;
  weightedF1: number;
  macroF1: number;
}

/** Each source corpus's scores on a split of a joined set (undefined for a set of one source). */
export function perCorpusScores(
  split: FeatureSplit,
  predictions: readonly number[],
  classNames: readonly string[],
): CorpusScores[] | undefined {
  const corpora = split.corpora;
  if (!corpora) return undefined;
  return [...new Set(corpora)].map((corpus) => {
    const idx = corpora.flatMap((c, i) => (c === corpus ? [i] : []));
    const m = computeMetrics(
      idx.map((i) => split.labels[i]!),
      idx.map((i) => predictions[i]!),
      classNames,
    );
    return { corpus, n: m.n, accuracy: m.accuracy, weightedF1: m.weightedF1, macroF1: m.macroF1 };
  });
}

export interface EvalOptions {
  checkpoint: string;
  features: FeatureSet;
  /** Names the features in messages and the report ('feature cache runs/cache'). */
  source: string;
  split: string;
  batchSize: number;
  /** Folder for the report files. */
  outDir: string;
}

/**
 * The checkpoint's scores on one split (checked to fit the features first), written as the report files. The features
 * are read through the label map the checkpoint was trained with, if any.
 */
export async function evaluateCheckpoint(backend: Backend, given: EvalOptions): Promise<{ report: EvalReport; meta: CheckpointMeta }> {
  const o = { ...given, features: withJoinedSplits(given.features, [given.split], given.source) }; // 'train+dev+test': one split
  if (!o.features.splits[o.split])
    throw new DataError(`${o.source} has no split '${o.split}' (it has: ${Object.keys(o.features.splits).join(', ')})`);
  let loaded: ReturnType<typeof loadCheckpoint>;
  try {
    loaded = loadCheckpoint(backend, o.checkpoint);
  } catch (err) {
    // the checkpoint named once: the load's own messages name it already (the same words as predict and export)
    if (err instanceof Error) throw new DataError(err.message.includes(o.checkpoint) ? err.message : `${o.checkpoint}: ${err.message}`);
    throw err;
  }
  const { model, meta } = loaded;
  const features = checkpointFeatures(meta, o.features, o.checkpoint);
  const split = features.splits[o.split]!;
  if (split.size === 0)
    throw new DataError(
      `${o.source}: split '${o.split}' is ` +
        `empty${meta.labelMaps ? ` after the checkpoint's label map ${meta.labelMaps[0]!.labelMap.name}` : ''}`,
    );
  checkCheckpointFeatures(meta, features, o.checkpoint, o.source);
  const result = await evaluate(model, split, meta.classNames, o.batchSize);
  const report = await writeEvalReport(o.outDir, {
    checkpoint: o.checkpoint,
    data: o.source,
    splitName: o.split,
    split,
    meta,
    result,
    speakerNorm: features.speakerNorm,
  });
  const layerMix = await model.layerMixWeights();
  return { report: layerMix ? { ...report, layerMix } : report, meta };
}

/**
 * `features` read as the checkpoint at `path` was trained: through its label map, and with each speaker standardized
 * by the speaker's statistics when it was trained with --speaker-norm.
 */
export function checkpointFeatures(meta: CheckpointMeta, features: FeatureSet, path: string): FeatureSet {
  const mapped = checkpointLabels(meta, features, path);
  if (!trainedWithSpeakerNorm(meta)) return mapped;
  return standardizeSpeakers(mapped, checkpointSpeakerFallback(meta, path)); // utterances without a speaker: fusion/input-norm.ts
}

function checkpointLabels(meta: CheckpointMeta, features: FeatureSet, path: string): FeatureSet {
  const saved = meta.labelMaps?.[0]?.labelMap;
  if (!saved) return features;
  const map = labelMapFromJSON({ name: saved.name, classes: saved.classes, map: saved.map }, `${path} (its label map)`);
  if (!features.labelMaps) return mapFeatureSet(features, map);
  const had = features.labelMaps[0]!.labelMap;
  if (!sameLabelMap(had, map))
    throw new DataError(`${path} was trained through label map ${saved.name}; the features were read through ${had.name}`);
  return features;
}

/** Writes EVAL_REPORT_FILES into `outDir` and returns what metrics.json holds. */
export async function writeEvalReport(
  outDir: string,
  r: {
    checkpoint: string;
    data: string;
    splitName: string;
    split: FeatureSplit;
    meta: CheckpointMeta;
    result: Metrics & { predictions: number[]; probabilities: number[][] };
    speakerNorm?: SpeakerNormReport;
  },
): Promise<EvalReport> {
  const { predictions, probabilities, ...metrics } = r.result;
  const { meta, split } = r;
  const c = meta.config;
  mkdirSync(outDir, { recursive: true });
  const perCorpus = perCorpusScores(split, predictions, meta.classNames);
  const report: EvalReport = {
    checkpoint: r.checkpoint,
    data: r.data,
    split: r.splitName,
    fusion: c.fusion,
    step: meta.step,
    ...metrics,
    ...(perCorpus ? { perCorpus } : {}),
    ...(r.speakerNorm ? { speakerNorm: r.speakerNorm } : {}),
  };
  writeFileAtomic(join(outDir, 'metrics.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(
    join(outDir, 'confusion.json'),
    JSON.stringify({ classNames: metrics.classNames, rows: 'true', columns: 'predicted', confusion: metrics.confusion }, null, 2) + '\n',
  );
  writeFileAtomic(
    join(outDir, 'predictions.jsonl'),
    split.ids
      .map((id, i) =>
        JSON.stringify({
          id,
          ...(split.corpora ? { corpus: split.corpora[i] } : {}),
          label: meta.classNames[split.labels[i]!],
          predicted: meta.classNames[predictions[i]!],
          probabilities: probabilities[i]!.map((p) => +p.toFixed(5)),
        }),
      )
      .join('\n') + '\n',
  );
  const svg = confusionSvg(metrics, `${c.fusion} on ${r.splitName} (${metrics.n} utterances)`);
  writeFileAtomic(join(outDir, 'confusion.svg'), svg);
  writeFileAtomic(join(outDir, 'confusion.png'), await svgToPng(svg));
  return report;
}
