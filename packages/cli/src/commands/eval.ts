// `emofuse eval`: a checkpoint on one split: accuracy, weighted F1 (the paper's metric), macro F1, per-class
// precision / recall / F1 / support, and the confusion matrix as JSON, SVG and PNG. Parsing and printing only:
// the scoring and the report files are the model's evaluateCheckpoint().

import type { Command } from 'commander';
import { dirname, join } from 'node:path';
import { EVAL_REPORT_FILES, TRAIN_DEFAULTS, evaluateCheckpoint, formatSpeakerNorm } from '@emofuse/model';
import { addBackendOption, addDataOptions, asUserError, int, loadFeatures, openBackend, type DataFlags } from '../options.ts';
import { table } from '../output.ts';
import { evalFinetuned } from '../finetune-text.ts';
import { isFinetunedText } from '@emofuse/model';

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
    .option('--split <name>', "split to evaluate; 'a+b' joins splits into one (e.g. train+dev+test)", 'test');
  addBackendOption(cmd)
    .option('--batch-size <B>', 'utterances per forward pass', String(TRAIN_DEFAULTS.batchSize))
    .option('--out <dir>', `where to write ${EVAL_REPORT_FILES.join(', ')} (default: <checkpoint folder>/eval-<split>)`)
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
    const batchSize = int(o.batchSize, '--batch-size');
    if (isFinetunedText(o.checkpoint)) return evalFinetunedCommand(o, batchSize);
    const { features, source } = loadFeatures(o);
    const outDir = o.out ?? join(dirname(o.checkpoint), `eval-${o.split}`);
    const backend = await openBackend(o.backend);
    try {
      const { report: m, meta } = await evaluateCheckpoint(backend, {
        checkpoint: o.checkpoint,
        features,
        source,
        split: o.split,
        batchSize,
        outDir,
      }).catch(asUserError);
      if (o.json) {
        console.log(JSON.stringify(m, null, 2));
        return;
      }
      const pct = (x: number) => (100 * x).toFixed(1);
      console.log(`${o.checkpoint} (${m.fusion}, step ${meta.step}) on ${source}, split '${o.split}' (${m.n} utterances)`);
      if (meta.labelMaps?.length) console.log(`labels read through the checkpoint's label map ${meta.labelMaps[0]!.labelMap.name}`);
      if (m.speakerNorm) console.log(`speaker norm (as trained): ${formatSpeakerNorm(m.speakerNorm)}`);
      console.log('');
      console.log(
        table([
          ['accuracy', pct(m.accuracy)],
          ['weighted F1', pct(m.weightedF1)],
          ['macro F1', pct(m.macroF1)],
        ]),
      );
      if (m.perCorpus) {
        console.log('');
        console.log(
          table(
            m.perCorpus.map((c) => [c.corpus, c.n, pct(c.accuracy), pct(c.weightedF1), pct(c.macroF1)]),
            ['corpus', 'utterances', 'accuracy', 'weighted F1', 'macro F1'],
          ),
        );
      }
      console.log('');
      console.log(
        table(
          m.perClass.map((p) => [p.name, pct(p.precision), pct(p.recall), pct(p.f1), p.support]),
          ['class', 'precision', 'recall', 'F1', 'support'],
        ),
      );
      if (m.layerMix)
        console.log(
          `\naudio layer mix (layer 0 = embeddings .. ${m.layerMix.length - 1}): ${m.layerMix.map((w) => w.toFixed(3)).join(' ')}`,
        );
      console.log(`\nwrote ${outDir}/${EVAL_REPORT_FILES.join(', ')}`);
    } finally {
      await backend.destroy();
    }
  });
}

/** eval on train --finetune-text's file: the fine-tuned encoder + head on the split's texts (no report files). */
async function evalFinetunedCommand(o: EvalFlags, batchSize: number): Promise<void> {
  const backend = await openBackend(o.backend);
  try {
    const r = await evalFinetuned(backend, { ...o, batchSize });
    const m = r.metrics;
    if (o.json) {
      const probabilities = Object.fromEntries(r.ids.map((id, i) => [id, r.probabilities[i]]));
      console.log(JSON.stringify({ ...m, probabilities }, null, 2));
      return;
    }
    const pct = (x: number) => (100 * x).toFixed(1);
    console.log(`${o.checkpoint} (fine-tuned text encoder) on ${o.features}, split '${o.split}' (${m.n} utterances)\n`);
    console.log(
      table([
        ['accuracy', pct(m.accuracy)],
        ['weighted F1', pct(m.weightedF1)],
        ['macro F1', pct(m.macroF1)],
      ]),
    );
    console.log('');
    console.log(
      table(
        m.perClass.map((p) => [p.name, pct(p.precision), pct(p.recall), pct(p.f1), p.support]),
        ['class', 'precision', 'recall', 'F1', 'support'],
      ),
    );
  } finally {
    await backend.destroy();
  }
}
