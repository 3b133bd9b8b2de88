// `emofuse ablate`: trains and evaluates every fusion variant with the same data, seed(s) and budget, and prints
// one table (weighted F1, macro F1, accuracy on the test split, parameters, train time), also written as Markdown
// and JSON. The ablation study the paper does not have.

import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FUSION_VARIANTS, evaluate, loadCheckpoint, train, type FusionVariant } from '@emofuse/model';
import { table, UserError } from '../output.ts';
import { writeFileAtomic } from '@emofuse/model';
import { addDataOptions, addTrainOptions, asUserError, int, loadFeatures, openBackend, parseTrainFlags, stepBar, type TrainFlags } from './train.ts';

interface AblateFlags extends TrainFlags {
  variants: string;
  seeds: string;
  testSplit: string;
  out: string;
  json?: boolean;
}

interface Row {
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

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

export function registerAblate(program: Command): void {
  const cmd = program
    .command('ablate')
    .description('train + evaluate every fusion variant with the same seed(s) and budget; one table (text, Markdown, JSON)')
    .option('--variants <list>', 'comma-separated fusion variants', FUSION_VARIANTS.join(','))
    .option('--seeds <list>', 'comma-separated seeds; each variant trains once per seed, scores are averaged', '0')
    .option('--test-split <name>', 'split the best checkpoint of each run is scored on', 'test')
    .option('--out <dir>', 'runs go to <out>/<variant>-s<seed>; the table to <out>/ablation.md and ablation.json', 'runs/ablate')
    .option('--json', 'print the table as JSON');
  addDataOptions(cmd);
  addTrainOptions(cmd, false);
  cmd.addHelpText(
    'after',
    `
Every variant gets the same train/dev/test data, seeds, epochs, batch size, learning-rate schedule and early
stopping; each is scored on --test-split with its best-on-dev checkpoint.

Examples:
  emofuse ablate --synthetic --width 32 --epochs 10 --lr 3e-3 --out runs/ablate-syn
  emofuse ablate --features runs/cache-controlled --seeds 0,1,2 --out runs/ablate-controlled
  emofuse ablate --features runs/cache-controlled --variants cross-self,text,audio`,
  );
  cmd.action(async (o: AblateFlags) => {
    const variants = o.variants.split(',').map((v) => v.trim()) as FusionVariant[];
    for (const v of variants) if (!FUSION_VARIANTS.includes(v)) throw new UserError(`--variants: '${v}' is not one of ${FUSION_VARIANTS.join(', ')}`);
    const seeds = o.seeds.split(',').map((s) => int(s.trim(), '--seeds', 0));
    const { features, source } = loadFeatures(o);
    const test = features.splits[o.testSplit];
    if (!test || test.size === 0) throw new UserError(`${source}: split '${o.testSplit}' is missing or empty; choose one with --test-split`);
    mkdirSync(o.out, { recursive: true });
    const rows: Row[] = [];
    const log = (s: string) => {
      if (!o.json) console.error(s);
    };
    log(`emofuse ablate: ${source}; ${variants.length} variants x ${seeds.length} seed(s); backend ${o.backend}`);
    for (const fusion of variants) {
      const runs: { wf1: number; mf1: number; acc: number; secs: number; params: number; epochs: number }[] = [];
      for (const seed of seeds) {
        const dir = join(o.out, `${fusion}-s${seed}`);
        const opts = parseTrainFlags({ ...o, seed: String(seed) }, dir, fusion);
        const backend = await openBackend(o.backend);
        const bar = stepBar(o.progress && !o.json, `${fusion} s${seed}`);
        try {
          const r = await train(backend, features, { ...opts, onStep: bar.onStep }).catch(asUserError);
          bar.stop();
          const { model, meta } = loadCheckpoint(backend, r.bestCheckpoint);
          const m = await evaluate(model, test, meta.classNames, opts.batchSize);
          runs.push({ wf1: m.weightedF1, mf1: m.macroF1, acc: m.accuracy, secs: r.seconds, params: model.numParams, epochs: r.epochs });
          log(`${fusion} seed ${seed}: test weighted F1 ${(100 * m.weightedF1).toFixed(1)}, accuracy ${(100 * m.accuracy).toFixed(1)} (${r.epochs} epochs, ${r.seconds.toFixed(1)} s)`);
        } finally {
          bar.stop();
          await backend.destroy();
        }
      }
      rows.push({
        fusion, seeds, weightedF1: mean(runs.map((r) => r.wf1)), weightedF1Std: std(runs.map((r) => r.wf1)), macroF1: mean(runs.map((r) => r.mf1)),
        accuracy: mean(runs.map((r) => r.acc)), params: runs[0]!.params, trainSeconds: mean(runs.map((r) => r.secs)), epochs: mean(runs.map((r) => r.epochs)),
      });
    }
    const pct = (x: number) => (100 * x).toFixed(1);
    const header = ['fusion', 'weighted F1', 'macro F1', 'accuracy', 'params', 'train s', 'epochs'];
    const cells = rows.map((r) => [
      r.fusion, seeds.length > 1 ? `${pct(r.weightedF1)} ± ${pct(r.weightedF1Std)}` : pct(r.weightedF1), pct(r.macroF1), pct(r.accuracy),
      r.params, r.trainSeconds.toFixed(1), r.epochs.toFixed(seeds.length > 1 ? 1 : 0),
    ]);
    const budget = `epochs ${o.epochs}, batch ${o.batchSize}, lr ${o.lr}, width ${o.width}, heads ${o.heads}, layers ${o.layers}, seeds ${seeds.join(',')}, patience ${o.patience}`;
    const md =
      `# emofuse ablate\n\nData: ${source}; scored on '${o.testSplit}' (${test.size} utterances) with each run's best-on-dev checkpoint.\n` +
      `Budget: ${budget}; backend ${o.backend}.\n\n` +
      `| ${header.join(' | ')} |\n|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|\n` +
      cells.map((c) => `| ${c.join(' | ')} |`).join('\n') + '\n';
    writeFileAtomic(join(o.out, 'ablation.md'), md);
    const json = { data: source, testSplit: o.testSplit, testSize: test.size, budget, backend: o.backend, rows };
    writeFileAtomic(join(o.out, 'ablation.json'), JSON.stringify(json, null, 2) + '\n');
    if (o.json) console.log(JSON.stringify(json, null, 2));
    else {
      console.log(`\n${source}, split '${o.testSplit}' (${test.size} utterances); ${budget}\n`);
      console.log(table(cells, header));
      console.log(`\nwrote ${join(o.out, 'ablation.md')} and ${join(o.out, 'ablation.json')}`);
    }
  });
}
