// A checkpoint scored on one split of a feature set, and the report written beside it: metrics.json,
// confusion.json, confusion.svg, confusion.png and predictions.jsonl. What `emofuse eval` runs and prints.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkCheckpointFeatures } from './compat.ts';
import type { FeatureSet, FeatureSplit } from './features.ts';
import type { Backend } from './fusion/backend.ts';
import { writeFileAtomic } from './io.ts';
import { confusionSvg, svgToPng } from './metrics/confusion-plot.ts';
import type { Metrics } from './metrics/metrics.ts';
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

/** The checkpoint's scores on one split (checked to fit the features first), written as the report files. */
export async function evaluateCheckpoint(backend: Backend, o: EvalOptions): Promise<{ report: EvalReport; meta: CheckpointMeta }> {
  const split = o.features.splits[o.split];
  if (!split) throw new DataError(`${o.source} has no split '${o.split}' (it has: ${Object.keys(o.features.splits).join(', ')})`);
  if (split.size === 0) throw new DataError(`${o.source}: split '${o.split}' is empty`);
  let loaded;
  try {
    loaded = loadCheckpoint(backend, o.checkpoint);
  } catch (err) {
    if (err instanceof Error) throw new DataError(`${o.checkpoint}: ${err.message.replace(`${o.checkpoint}: `, '')}`);
    throw err;
  }
  const { model, meta } = loaded;
  checkCheckpointFeatures(meta, o.features, o.checkpoint, o.source);
  const result = await evaluate(model, split, meta.classNames, o.batchSize);
  const report = await writeEvalReport(o.outDir, { checkpoint: o.checkpoint, data: o.source, splitName: o.split, split, meta, result });
  return { report, meta };
}

/** Writes EVAL_REPORT_FILES into `outDir` and returns what metrics.json holds. */
export async function writeEvalReport(
  outDir: string,
  r: { checkpoint: string; data: string; splitName: string; split: FeatureSplit; meta: CheckpointMeta; result: Metrics & { predictions: number[]; probabilities: number[][] } },
): Promise<EvalReport> {
  const { predictions, probabilities, ...metrics } = r.result;
  const { meta, split } = r;
  const c = meta.config;
  mkdirSync(outDir, { recursive: true });
  const report: EvalReport = { checkpoint: r.checkpoint, data: r.data, split: r.splitName, fusion: c.fusion, step: meta.step, ...metrics };
  writeFileAtomic(join(outDir, 'metrics.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(join(outDir, 'confusion.json'), JSON.stringify({ classNames: metrics.classNames, rows: 'true', columns: 'predicted', confusion: metrics.confusion }, null, 2) + '\n');
  writeFileAtomic(
    join(outDir, 'predictions.jsonl'),
    split.ids.map((id, i) => JSON.stringify({ id, label: meta.classNames[split.labels[i]!], predicted: meta.classNames[predictions[i]!], probabilities: probabilities[i]!.map((p) => +p.toFixed(5)) })).join('\n') + '\n',
  );
  const svg = confusionSvg(metrics, `${c.fusion} on ${r.splitName} (${metrics.n} utterances)`);
  writeFileAtomic(join(outDir, 'confusion.svg'), svg);
  writeFileAtomic(join(outDir, 'confusion.png'), await svgToPng(svg));
  return report;
}
