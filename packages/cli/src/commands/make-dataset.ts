// `emofuse make-dataset controlled`: synthesises the controlled bimodal benchmark with espeak-ng.

import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { CONTROLLED_CLASSES, generateControlled } from '@emofuse/model';
import { asUserError, int } from '../options.ts';
import { table, UserError } from '../output.ts';

export function registerMakeDataset(program: Command): void {
  program
    .command('make-dataset')
    .description('generate the controlled bimodal benchmark (text cue x prosody cue, spoken by espeak-ng)')
    .argument('<name>', "the dataset to generate: 'controlled'")
    .requiredOption('--out <dir>', 'folder for manifest.jsonl, classes.json and wavs/')
    .option('--size <n>', 'number of utterances (balanced over the 4 classes)', '480')
    .option('--seed <n>', 'random seed (same seed, same dataset)', '1')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
The controlled benchmark has 4 classes = 2 text cues x 2 prosody cues:
  content  positive words, calm voice      excited  positive words, aroused voice
  sad      negative words, calm voice      angry    negative words, aroused voice
The audio speaks a neutral carrier sentence unrelated to the text, so text alone or audio alone can reach only
50% accuracy; a model that fuses both can reach 100%. Voices: 60 espeak-ng accent/variant pairs, splits
speaker-independent. Needs espeak-ng (apt-get install espeak-ng; scripts/setup.sh installs it).

Examples:
  emofuse make-dataset controlled --out data/controlled
  emofuse make-dataset controlled --out data/controlled-big --size 2000 --seed 7`,
    )
    .action(async (name: string, opts: { out: string; size: string; seed: string; progress: boolean }) => {
      if (name !== 'controlled') throw new UserError(`unknown dataset '${name}': the only generated dataset is 'controlled'`);
      const size = int(opts.size, '--size', 4);
      const seed = int(opts.seed, '--seed', Number.MIN_SAFE_INTEGER);
      const bar = new cliProgress.SingleBar(
        { format: 'synthesise {bar} {percentage}% | {value}/{total} clips | ETA {eta_formatted}', stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      let started = false;
      let result: Awaited<ReturnType<typeof generateControlled>>;
      try {
        result = await generateControlled(opts.out, {
          size,
          seed,
          onProgress: (done, total) => {
            if (!opts.progress) return;
            if (!started) bar.start(total, 0), (started = true);
            bar.update(done);
          },
        });
      } catch (err) {
        asUserError(err);
      } finally {
        if (started) bar.stop();
      }
      const counts = (split: string) =>
        CONTROLLED_CLASSES.map((c) => result.items.filter((i) => i.split === split && i.label === c).length);
      console.log(
        `wrote ${result.items.length} utterances to ${opts.out} in ${result.seconds.toFixed(1)} s (manifest: ${result.manifest})`,
      );
      console.log(
        table(
          ['train', 'dev', 'test'].map((s) => [s, ...counts(s)]),
          ['split', ...CONTROLLED_CLASSES],
        ),
      );
      console.log(`\nnext: emofuse extract --dataset controlled --data ${opts.out} --out <cache>`);
    });
}
