// `emofuse ablate`: trains and evaluates every fusion variant with the same data, seed(s) and budget, and prints
// one table (weighted F1, macro F1, accuracy on the test split, parameters, train time), also written as Markdown
// and JSON. The ablation study the paper does not have. Parsing and printing only: the study is the model's
// runAblation().

import type { Command } from 'commander';
import { join } from 'node:path';
import { FUSION_VARIANTS, ablationTable, parseFusionVariants, runAblation } from '@emofuse/model';
import { addDataOptions, addTrainOptions, asUserError, int, loadFeatures, parseTrainFlags, userErrors, type TrainFlags } from '../options.ts';
import { stepBar, table } from '../output.ts';

interface AblateFlags extends TrainFlags {
  variants: string;
  seeds: string;
  testSplit: string;
  out: string;
  json?: boolean;
}

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
    const variants = userErrors(() => parseFusionVariants(o.variants, '--variants'));
    const seeds = o.seeds.split(',').map((s) => int(s.trim(), '--seeds', 0));
    const trainOptions = parseTrainFlags(o, o.out, false);
    const { features, source } = loadFeatures(o);
    const log = (s: string) => {
      if (!o.json) console.error(s);
    };
    log(`emofuse ablate: ${source}; ${variants.length} variants x ${seeds.length} seed(s); backend ${o.backend}`);
    let bar: ReturnType<typeof stepBar> | undefined;
    try {
      const result = await runAblation(features, {
        variants, seeds, testSplit: o.testSplit, outDir: o.out, backend: o.backend, train: trainOptions, source,
        onRunStart: ({ fusion, seed }) => {
          bar = stepBar(o.progress && !o.json, `${fusion} s${seed}`);
          return bar.onStep;
        },
        onRunEnd: ({ fusion, seed, result: r }) => {
          bar?.stop();
          if (r) {
            log(`${fusion} seed ${seed}: test weighted F1 ${(100 * r.weightedF1).toFixed(1)}, accuracy ${(100 * r.accuracy).toFixed(1)} (${r.epochs} epochs, ${r.trainSeconds.toFixed(1)} s)`);
          }
        },
      }).catch(asUserError);
      if (o.json) {
        console.log(JSON.stringify(result, null, 2));
        return;
      }
      const { header, cells } = ablationTable(result);
      console.log(`\n${source}, split '${o.testSplit}' (${result.testSize} utterances); ${result.budget}\n`);
      console.log(table(cells, header));
      console.log(`\nwrote ${join(o.out, 'ablation.md')} and ${join(o.out, 'ablation.json')}`);
    } finally {
      bar?.stop();
    }
  });
}
