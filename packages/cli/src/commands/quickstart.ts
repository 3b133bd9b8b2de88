// `emofuse quickstart`: the whole pipeline on the built-in controlled benchmark, with nothing to download:
// make-dataset (espeak-ng speech) -> extract (hash text + logmel audio) -> train (--backend auto: our WGSL kernels on a GPU, onnxruntime's
// CPU kernels on a software adapter) -> eval. Each step is the real subcommand, run as a child process of this same CLI, so what a user
// sees here is what they get when they run the steps themselves (printed before each step). Every step resumes: run it again after an
// interruption and it continues.

import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { describeBackends, flagOf, isBackendName } from '@emofuse/model';
import { join } from 'node:path';
import type { Command } from 'commander';
import { addBackendOption, int } from '../options.ts';
import { UserError } from '../output.ts';

interface QuickstartOptions {
  out: string;
  backend: string;
  epochs: string;
}

/** The quickstart's training recipe for the controlled benchmark (a small model; the rest are train's defaults). */
const RECIPE = { width: '64', lr: '1e-3', batchSize: '16', epochs: '8' };
/** The recipe but its epochs (quickstart's own --epochs) as `emofuse train` flags, spelled by the model's settings schema. */
const recipeArgs = (['width', 'lr', 'batchSize'] as const).flatMap((name) => [flagOf(name), RECIPE[name]]);

function runStep(title: string, args: string[]): Promise<void> {
  const shown = ['emofuse', ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ');
  console.log(`\n== ${title}\n$ ${shown}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1]!, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new UserError(
            `quickstart: step '${title}' failed (${signal ?? `exit ${code}`}); its message is above. Run the same command again to resume.`,
          ),
        );
    });
  });
}

export function registerQuickstart(program: Command): void {
  const cmd = program
    .command('quickstart')
    .description('run the whole pipeline on the built-in controlled benchmark (under a minute on 2 CPU cores, nothing to download)')
    .option('--out <dir>', 'folder for the dataset, feature cache, run and evaluation', 'emofuse-quickstart');
  addBackendOption(cmd)
    .option('--epochs <n>', 'training epochs', RECIPE.epochs)
    .addHelpText(
      'after',
      `
The controlled benchmark: 480 utterances spoken by espeak-ng, 4 classes = 2 text cues x 2 prosody cues, so
text alone or audio alone can reach only about 50% accuracy and a working fusion model nearly 100%.
Steps (each printed before it runs, each resumable):
  emofuse make-dataset controlled --out <out>/data
  emofuse extract --dataset controlled --data <out>/data --out <out>/cache
  emofuse train --features <out>/cache ${recipeArgs.join(' ')} --out <out>/run
  emofuse eval --checkpoint <out>/run/best.safetensors --features <out>/cache --split test

Example:
  emofuse quickstart --out /tmp/emofuse-demo`,
    )
    .action(async (o: QuickstartOptions) => {
      // Every flag is checked before the first step: a bad one must not cost a minute of work first.
      int(o.epochs, '--epochs');
      if (!isBackendName(o.backend)) throw new UserError(`--backend must be ${describeBackends()}, got '${o.backend}'`);
      if (existsSync(o.out) && !statSync(o.out).isDirectory())
        throw new UserError(`--out ${o.out} is a file, not a folder: choose another --out`);
      const data = join(o.out, 'data');
      const cache = join(o.out, 'cache');
      const run = join(o.out, 'run');
      const t0 = performance.now();
      await runStep('1/4 make the controlled dataset', ['make-dataset', 'controlled', '--out', data]);
      await runStep('2/4 extract features (hash text, logmel audio)', [
        'extract',
        '--dataset',
        'controlled',
        '--data',
        data,
        '--out',
        cache,
      ]);
      const trainArgs = ['train', '--features', cache, '--backend', o.backend, ...recipeArgs, flagOf('epochs'), o.epochs, '--out', run];
      if (existsSync(join(run, 'last.safetensors'))) trainArgs.push('--resume');
      await runStep(`3/4 train the cross-self fusion model (${o.backend})`, trainArgs);
      const evalDir = join(run, 'eval-test');
      await runStep('4/4 evaluate on the test split (speakers unseen in training)', [
        'eval',
        '--checkpoint',
        join(run, 'best.safetensors'),
        '--features',
        cache,
        '--split',
        'test',
        '--backend',
        o.backend,
        '--out',
        evalDir,
      ]);
      console.log(
        `\nquickstart done in ${((performance.now() - t0) / 1000).toFixed(0)} s. Confusion matrix: ${join(evalDir, 'confusion.png')}\n` +
          `Next: 'emofuse ablate --features ${cache} ${recipeArgs.join(' ')}' compares the fusion variants\n` +
          `with text alone and audio alone (each can reach only about 50% here).`,
      );
    });
}
