// `emofuse train`: trains the fusion classifier on a feature cache (emofuse extract), a JSON arrays file, or the
// generated bimodal task (--synthetic), on any registered backend (--backend wgsl: our WGSL kernels, cpu: the CPU
// references). Parsing and printing only: the flags are in ../options.ts, the loop is the model's train().

import type { Command } from 'commander';
import { flagOf, formatLabelMapReport, formatSpeakerNorm, train } from '@emofuse/model';
import {
  addDataOptions,
  addTrainOptions,
  asUserError,
  loadFeatures,
  openBackend,
  parseTrainFlags,
  type TrainFlags,
  warnUntrainedClasses,
} from '../options.ts';
import { stepBar, table, UserError } from '../output.ts';
import { checkOutFolder, resumeCommand, signalExitCode, stopOnSignals } from '../signals.ts';
import { planFinetune, runFinetune } from '../finetune-text.ts';

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('train the attention-fusion classifier on cached features (or generated arrays)')
    .option('--out <dir>', 'run folder: last.safetensors, best.safetensors, metrics.jsonl', 'runs/train')
    .option(
      '--resume',
      'continue the run in --out from last.safetensors (finetuned-text-last.safetensors with --finetune-text): model settings ' +
        'come from the checkpoint; give the same data and training flags to continue bit-for-bit (same backend)',
    )
    .option('--force', 'start a new run in an --out that already holds one (replaces its checkpoints and metrics log)')
    .option('--json', 'print the result as JSON');
  addDataOptions(cmd);
  addTrainOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Data (one of):
  --features runs/cache       a feature cache written by 'emofuse extract' (splits train/dev/test)
  --features arrays.json      { classNames, textDim, audioDim, splits: { train: [{ id, label, text: [[...]], audio: [[...]] }] } }
  --features A,B              several caches joined (same encoders; a text-only cache's utterances have no audio);
                              with different labels, read them through one map: --label-map meld7
  --synthetic                 the generated bimodal task (each modality alone caps at 50% accuracy)

Fusion variants (--fusion):
  cross-self  cross-attention both ways, then self-attention over both (the paper; default)
  cross       cross-attention only         self    self-attention over the concatenation, no cross
  concat      pooled features concatenated, MLP       mean   pooled features averaged, MLP
  gate        learned sigmoid gate between the pooled features, MLP
  text, audio one modality only (projection + self-attention)

Examples:
  emofuse train --synthetic --width 32 --epochs 10 --lr 3e-3 --out runs/syn
  emofuse train --features runs/cache-controlled --out runs/controlled
  emofuse train --features runs/cache-controlled --out runs/controlled --resume     # after an interruption
  emofuse train --synthetic --backend cpu --width 16 --epochs 2                      # on the CPU references
  emofuse train --features runs/cache-meld-minilm --fusion text --finetune-text 2 --epochs 2 --lr 1e-3 --width 64 \\
    --heads 4 --out runs/meld-ft     # fine-tunes MiniLM's top 2 blocks: runs/meld-ft/finetuned-text.safetensors
  emofuse train --features runs/cache-meld-minilm,runs/cache-ravdess-minilm-whisper --label-map meld7 --fusion cross-self \\
    --finetune-text 2 --out runs/ft-xs     # the encoder under a text + audio head (audio from the caches)`,
  );
  cmd.action(async (o: TrainFlags & { out: string; resume?: boolean; force?: boolean; json?: boolean }) => {
    if (o.resume && o.force)
      throw new UserError('give either --resume (continue the run in --out) or --force (start over in it), not both');
    const opts = parseTrainFlags(o, o.out);
    checkOutFolder(o.out);
    if (opts.finetuneText !== undefined) return finetune(o, opts);
    const { features, source } = loadFeatures(o);
    warnUntrainedClasses(features, opts);
    const backend = await openBackend(o.backend);
    const bar = stepBar(o.progress && !o.json, 'train', { json: o.json && o.progress });
    const stop = stopOnSignals(() =>
      bar.log('\nemofuse: stopping after this step and saving last.safetensors (press Ctrl-C again to quit at once)'),
    );
    try {
      if (!o.json)
        bar.log(`emofuse train: ${source}; backend ${backend.description}; fusion ${opts.model!.fusion}${o.resume ? ' (resuming)' : ''}`);
      const r = await train(backend, features, {
        ...opts,
        resume: o.resume,
        force: o.force,
        signal: stop.signal,
        onStep: bar.onStep,
        onLabelMap: (reports) => {
          if (o.json) return;
          for (const r of reports) for (const line of formatLabelMapReport(r)) bar.log(reports.length > 1 ? `${r.corpus}: ${line}` : line);
        },
        onSpeakerNorm: (r) => {
          if (!o.json) bar.log(`speaker norm: ${formatSpeakerNorm(r)}`);
        },
        onEpoch: (e) => {
          if (!o.json) {
            bar.log(
              `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}  dev acc ${(100 * e.dev.accuracy).toFixed(1)}%  ` +
                `weighted F1 ${(100 * e.dev.weightedF1).toFixed(1)}  macro F1 ` +
                `${(100 * e.dev.macroF1).toFixed(1)}${e.best ? '  (best)' : ''}`,
            );
          }
        },
      }).catch(asUserError);
      bar.stop();
      if (r.interrupted) {
        // Ctrl-C or SIGTERM (exit 130 or 143), or the planned stop of --stop-after-steps, which the command to continue leaves out
        const planned = flagOf('stopAfterSteps');
        const args = process.argv.slice(2);
        const again = resumeCommand(
          stop.signal.aborted ? args : args.filter((a, i) => a !== planned && args[i - 1] !== planned && !a.startsWith(`${planned}=`)),
        );
        console.error(`emofuse train: stopped at step ${r.steps} (${r.lastCheckpoint} saved). Continue with:\n  ${again}`);
        if (stop.signal.aborted) process.exitCode = signalExitCode(stop.signal);
        return;
      }
      const summary = {
        steps: r.steps,
        epochs: r.epochs,
        bestDevWeightedF1: r.bestDevWeightedF1,
        bestEpoch: r.bestEpoch,
        stoppedEarly: r.stoppedEarly,
        seconds: r.seconds,
        params: r.model.numParams,
        config: r.model.config,
        best: r.bestCheckpoint,
        last: r.lastCheckpoint,
      };
      if (o.json) console.log(JSON.stringify(summary, null, 2));
      else {
        console.log(
          table([
            ['steps', r.steps],
            ['epochs', r.epochs],
            ['parameters', r.model.numParams],
            [
              opts.selectBy === 'corpus-mean' ? 'best dev weighted F1 (mean over corpora)' : 'best dev weighted F1',
              `${(100 * r.bestDevWeightedF1).toFixed(2)} (epoch ${r.bestEpoch})`,
            ],
            ['stopped early', r.stoppedEarly ? 'yes' : 'no'],
            ['time', `${r.seconds.toFixed(1)} s`],
            ['best checkpoint', r.bestCheckpoint],
            ['metrics log', `${o.out}/metrics.jsonl`],
          ]),
        );
        console.log(
          `\nnext: emofuse eval --checkpoint ${r.bestCheckpoint} ${o.synthetic ? '--synthetic' : `--features ${o.features}`} --split test`,
        );
      }
    } finally {
      stop.dispose();
      bar.stop();
      await backend.destroy();
    }
  });
}

/** train --finetune-text: the text encoder's top blocks and a text-only head (../finetune-text.ts). */
async function finetune(
  o: TrainFlags & { out: string; resume?: boolean; force?: boolean; json?: boolean },
  opts: ReturnType<typeof parseTrainFlags>,
) {
  const plan = planFinetune(opts, o);
  const backend = await openBackend(o.backend);
  const stop = stopOnSignals(() =>
    console.error('\nemofuse: stopping after this step and saving the run (press Ctrl-C again to quit at once)'),
  );
  try {
    const log = (line: string) => {
      if (!o.json) console.log(line);
    };
    log(
      `emofuse train: fine-tuning ${plan.modelSpec} (top ${plan.trainTop} blocks) under a ${plan.fusion} head on ` +
        `${plan.features}; backend ` +
        `${backend.description}${o.resume ? ' (resuming)' : ''}`,
    );
    const r = await runFinetune(backend, opts, plan, o.out, log, { resume: o.resume, force: o.force, signal: stop.signal });
    if (r.interrupted) {
      const planned = flagOf('stopAfterSteps');
      const args = process.argv.slice(2);
      const again = resumeCommand(
        stop.signal.aborted ? args : args.filter((a, i) => a !== planned && args[i - 1] !== planned && !a.startsWith(`${planned}=`)),
      );
      console.error(`emofuse train: stopped at step ${r.steps} (${r.last} saved). Continue with:\n  ${again}`);
      if (stop.signal.aborted) process.exitCode = signalExitCode(stop.signal);
      return;
    }
    if (o.json) console.log(JSON.stringify(r, null, 2));
    else {
      console.log(
        table([
          ['epochs', r.epochs],
          ['best dev weighted F1', `${(100 * r.bestDevWeightedF1).toFixed(2)} (epoch ${r.bestEpoch})`],
          ['time', `${r.seconds.toFixed(1)} s`],
          ['fine-tuned model', r.file],
        ]),
      );
      console.log(`\nnext: emofuse eval --checkpoint ${r.file} --features ${plan.features} --split test`);
    }
  } finally {
    stop.dispose();
    await backend.destroy();
  }
}
