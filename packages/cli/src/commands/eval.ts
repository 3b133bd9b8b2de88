// `emofuse eval`: a checkpoint on one split: accuracy, weighted F1 (the paper's metric), macro F1, per-class
// precision / recall / F1 / support, and the confusion matrix as JSON, SVG and PNG.

import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { confusionSvg, evaluate, loadCheckpoint, svgToPng, writeFileAtomic } from '@emofuse/model';
import { table, UserError } from '../output.ts';
import { addDataOptions, asUserError, int, loadFeatures, openBackend, type DataFlags } from './train.ts';



interface EvalFlags extends DataFlags {
  checkpoint: string;
  split: string;
  backend: string;
  batchSize: string;
  out?: string;
  json?: boolean;
}

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate a checkpoint on a split: accuracy, weighted/macro F1, per-class scores, confusion matrix (JSON, SVG, PNG)')
    .requiredOption('--checkpoint <file>', 'a .safetensors checkpoint written by emofuse train')
    .option('--split <name>', 'split to evaluate', 'test')
    .option('--backend <name>', "'wgsl' or 'cpu'", 'wgsl')
    .option('--batch-size <B>', 'utterances per forward pass', '32')
    .option('--out <dir>', 'where to write metrics.json, confusion.svg, confusion.png (default: <checkpoint folder>/eval-<split>)')
    .option('--json', 'print the metrics as JSON');
  addDataOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  emofuse eval --checkpoint runs/controlled/best.safetensors --features runs/cache-controlled --split test
  emofuse eval --checkpoint runs/syn/best.safetensors --synthetic --split dev --json`,
  );
  cmd.action(async (o: EvalFlags) => {
    const { features, source } = loadFeatures(o);
    const split = features.splits[o.split];
    if (!split) throw new UserError(`${source} has no split '${o.split}' (it has: ${Object.keys(features.splits).join(', ')})`);
    if (split.size === 0) throw new UserError(`${source}: split '${o.split}' is empty`);
    const backend = await openBackend(o.backend);
    try {
      let loaded;
      try {
        loaded = loadCheckpoint(backend, o.checkpoint);
      } catch (err) {
        if (err instanceof Error && !(err instanceof UserError)) throw new UserError(`${o.checkpoint}: ${err.message.replace(`${o.checkpoint}: `, '')}`);
        throw err;
      }
      const { model, meta } = loaded;
      const c = model.config;
      if (c.textDim !== features.textDim || c.audioDim !== features.audioDim) {
        throw new UserError(
          `${o.checkpoint} expects features ${c.textDim} (text) x ${c.audioDim} (audio) wide (encoders ${meta.textEncoder}, ${meta.audioEncoder}); ` +
            `${source} has ${features.textDim} x ${features.audioDim}: evaluate on features from the same encoders`,
        );
      }
      if (meta.classNames.join('\u0000') !== features.classNames.join('\u0000')) {
        throw new UserError(`${o.checkpoint} predicts [${meta.classNames.join(', ')}] but ${source} is labelled [${features.classNames.join(', ')}]`);
      }
      const m = await evaluate(model, split, meta.classNames, int(o.batchSize, '--batch-size')).catch(asUserError);
      const outDir = o.out ?? join(dirname(o.checkpoint), `eval-${o.split}`);
      mkdirSync(outDir, { recursive: true });
      const { predictions, probabilities, ...metrics } = m;
      const report = { checkpoint: o.checkpoint, data: source, split: o.split, fusion: c.fusion, step: meta.step, ...metrics };
      writeFileAtomic(join(outDir, 'metrics.json'), JSON.stringify(report, null, 2) + '\n');
      writeFileAtomic(join(outDir, 'confusion.json'), JSON.stringify({ classNames: metrics.classNames, rows: 'true', columns: 'predicted', confusion: metrics.confusion }, null, 2) + '\n');
      writeFileAtomic(
        join(outDir, 'predictions.jsonl'),
        split.ids.map((id, i) => JSON.stringify({ id, label: meta.classNames[split.labels[i]!], predicted: meta.classNames[predictions[i]!], probabilities: probabilities[i]!.map((p) => +p.toFixed(5)) })).join('\n') + '\n',
      );
      const svg = confusionSvg(metrics, `${c.fusion} on ${o.split} (${metrics.n} utterances)`);
      writeFileAtomic(join(outDir, 'confusion.svg'), svg);
      writeFileAtomic(join(outDir, 'confusion.png'), await svgToPng(svg));
      if (o.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const pct = (x: number) => (100 * x).toFixed(1);
      console.log(`${o.checkpoint} (${c.fusion}, step ${meta.step}) on ${source}, split '${o.split}' (${metrics.n} utterances)\n`);
      console.log(table([['accuracy', pct(metrics.accuracy)], ['weighted F1', pct(metrics.weightedF1)], ['macro F1', pct(metrics.macroF1)]]));
      console.log('');
      console.log(table(metrics.perClass.map((p) => [p.name, pct(p.precision), pct(p.recall), pct(p.f1), p.support]), ['class', 'precision', 'recall', 'F1', 'support']));
      console.log(`\nwrote ${outDir}/metrics.json, confusion.json, confusion.svg, confusion.png, predictions.jsonl`);
    } finally {
      await backend.destroy();
    }
  });
}
