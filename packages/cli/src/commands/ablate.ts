// `emofuse ablate`: trains and evaluates every fusion variant with the same data, seed(s) and budget, and prints
// one table (weighted F1, macro F1, accuracy on the test split, parameters, train time), also written as Markdown
// and JSON. The ablation study the paper does not have. Parsing and printing only: the study is the model's
// runAblation().

import type { Command } from 'commander';
import { join } from 'node:path';
import { FUSION_VARIANTS, TRAIN_DEFAULTS, ablationTable, parseFusionVariants, runAblation } from '@emofuse/model';
import {
  addDataOptions,
  addTrainOptions,
  asUserError,
  int,
  loadFeatures,
  parseTrainFlags,
  userErrors,
  type TrainFlags,
  warnUntrainedClasses,
} from '../options.ts';
import { UserError, stepBar, table } from '../output.ts';
import { checkOutFolder } from '../signals.ts';
import { existsSync, readdirSync } from 'node:fs';

/** The folder holds an ablation table or a trained run in one of its variant folders. */
function usedAblationFolder(out: string): boolean {
  if (!existsSync(out)) return false;
  if (existsSync(join(out, 'ablation.json')) || existsSync(join(out, 'ablation.md'))) return true;
  return readdirSync(out, { withFileTypes: true }).some(
    (e) => e.isDirectory() && ['last.safetensors', 'metrics.jsonl'].some((f) => existsSync(join(out, e.name, f))),
  );
}

/** EmoDB's file names SSTTTEV (speaker SS), optionally after a 'split/' prefix. */
const EMODB_SPEAKER_PATTERN = '^(?:.*/)?(\\d\\d)[a-z]\\d\\d[A-Z]';

/** --speaker-pattern as a function id -> speaker (its first capture group); a non-matching id is a user error. */
function speakerFromPattern(pattern: string): (id: string) => string {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw new UserError(`--speaker-pattern '${pattern}' is not a regular expression: ${(err as Error).message}`);
  }
  return (id) => {
    const m = re.exec(id);
    if (!m || m[1] === undefined)
      throw new UserError(
        `--speaker-pattern '${pattern}' gives no speaker (first capture group) for utterance id '${id}'; pass a pattern that does`,
      );
    return m[1];
  };
}

interface AblateFlags extends TrainFlags {
  variants: string;
  seeds: string;
  testSplit: string;
  folds?: string;
  speakerPattern?: string;
  score: string;
  out: string;
  force?: boolean;
  resume?: boolean;
  json?: boolean;
}

export function registerAblate(program: Command): void {
  const cmd = program
    .command('ablate')
    .description('train + evaluate every fusion variant with the same seed(s) and budget; one table (text, Markdown, JSON)')
    .option('--variants <list>', 'comma-separated fusion variants', FUSION_VARIANTS.join(','))
    .option('--seeds <list>', 'comma-separated seeds; each variant trains once per seed, scores are averaged', '0')
    .option('--test-split <name>', 'split the best checkpoint of each run is scored on', 'test')
    .option(
      '--score <weights>',
      "'best' (the best-on-dev checkpoint) or 'last' (the last epoch's weights: when dev is too small to choose)",
      'best',
    )
    .option(
      '--folds <K>',
      'instead: K-fold cross-validation over train + dev, folds by speaker (no early stopping; mean ± std over folds x seeds)',
    )
    .option(
      '--speaker-pattern <regex>',
      "with --folds: the speaker is the regex's first group in an utterance id (default: the speakers the cache names: RAVDESS, " +
        "EmoDB, CREMA-D; else EmoDB's SSTTTEV names)",
    )
    .option('--out <dir>', 'runs go to <out>/<variant>-s<seed>; the table to <out>/ablation.md and ablation.json', 'runs/ablate')
    .option('--force', 'run again into an --out that already holds an ablation (its runs and table are replaced)')
    .option(
      '--resume',
      'continue an interrupted ablation in --out (same flags): finished runs are kept, the interrupted one continues from its ' +
        'last checkpoint, the rest run',
    )
    .option('--json', 'print the table as JSON');
  addDataOptions(cmd);
  addTrainOptions(cmd, false);
  cmd.addHelpText(
    'after',
    `
Every variant gets the same train/dev/test data, seeds, epochs, batch size, learning-rate schedule and early
stopping; each is scored on --test-split with its best-on-dev checkpoint. The 'linear' variant (logistic
regression on mean + std pooled, standardized features) is always included: the floor to beat.
--folds K pools train + dev, deals whole speakers into K folds and trains each run on K-1 of them for the full
--epochs, scoring it on the held-out fold: choose settings this way on small corpora, then run the test split once.

Examples:
  emofuse ablate --synthetic --width 32 --epochs 10 --lr 3e-3 --out runs/ablate-syn
  emofuse ablate --features runs/cache-controlled --seeds 0,1,2 --out runs/ablate-controlled
  emofuse ablate --features runs/cache-controlled --variants cross-self,text,audio
  emofuse ablate --features runs/cache-emodb --variants cross-self,audio --folds 4 --seeds 0,1,2 --backend ort`,
  );
  cmd.action(async (o: AblateFlags) => {
    const variants = userErrors(() => parseFusionVariants(o.variants, '--variants'));
    const seeds = o.seeds.split(',').map((s) => int(s.trim(), '--seeds', 0));
    // a repeated entry would train into the same run folder twice (or weigh one seed twice in the mean)
    for (const [flag, list] of [
      ['--variants', variants],
      ['--seeds', seeds],
    ] as const) {
      const twice = list.find((x, i) => list.indexOf(x as never) !== i);
      if (twice !== undefined) throw new UserError(`${flag} names ${twice} twice: give each entry once`);
    }
    if (o.resume && o.force) throw new UserError('give either --resume (continue the ablation in --out) or --force (start over), not both');
    const folds = o.folds === undefined ? undefined : int(o.folds, '--folds', 2);
    if (o.score !== 'best' && o.score !== 'last') throw new UserError(`--score must be 'best' or 'last', got '${o.score}'`);
    const trainOptions = { ...parseTrainFlags(o, o.out, false), force: o.force };
    checkOutFolder(o.out);
    if (!o.force && !o.resume && usedAblationFolder(o.out)) {
      throw new UserError(
        `--out ${o.out} already holds an ablation (ablation.json or trained runs): continue it with --resume, replace it with ` +
          '--force, or choose another --out',
      );
    }
    const { features, source } = loadFeatures(o);
    warnUntrainedClasses(features, trainOptions);
    // folds: the speakers the features name (a cache of RAVDESS, EmoDB or CREMA-D), unless a pattern is given
    const named =
      features.splits[trainOptions.trainSplit ?? TRAIN_DEFAULTS.trainSplit]?.speakers !== undefined && o.speakerPattern === undefined;
    const speakerOf = folds === undefined || named ? undefined : speakerFromPattern(o.speakerPattern ?? EMODB_SPEAKER_PATTERN);
    const log = (s: string) => {
      if (!o.json) console.error(s);
    };
    log(`emofuse ablate: ${source}; ${variants.length} variants x ${seeds.length} seed(s); backend ${o.backend}`);
    let bar: ReturnType<typeof stepBar> | undefined;
    try {
      const result = await runAblation(features, {
        variants,
        seeds,
        testSplit: o.testSplit,
        folds,
        speakerOf,
        checkpoint: o.score,
        outDir: o.out,
        backend: o.backend,
        train: trainOptions,
        resume: !!o.resume,
        source,
        onRunStart: ({ fusion, seed, fold }) => {
          bar = stepBar(o.progress && !o.json, `${fusion} s${seed}${fold === undefined ? '' : ` fold ${fold}`}`);
          return bar.onStep;
        },
        onRunEnd: ({ fusion, seed, fold, result: r }) => {
          bar?.stop();
          if (r) {
            log(
              `${fusion} seed ${seed}${fold === undefined ? ': test' : `, fold ${fold}: held-out`} weighted F1 ` +
                `${(100 * r.weightedF1).toFixed(1)}, accuracy ${(100 * r.accuracy).toFixed(1)} (${r.epochs} epochs, ` +
                `${r.trainSeconds.toFixed(1)} s)`,
            );
          }
        },
      }).catch(asUserError);
      if (o.json) {
        console.log(JSON.stringify(result, null, 2));
        return;
      }
      const { header, cells } = ablationTable(result);
      const scored = result.folds
        ? `${result.folds.k} speaker folds of train + dev (${result.testSize} utterances)`
        : `split '${o.testSplit}' (${result.testSize} utterances)`;
      console.log(`\n${source}, ${scored}; ${result.budget}\n`);
      console.log(table(cells, header));
      console.log(`\nwrote ${join(o.out, 'ablation.md')} and ${join(o.out, 'ablation.json')}`);
    } finally {
      bar?.stop();
    }
  });
}
