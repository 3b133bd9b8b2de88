// `emofuse train`: trains the fusion classifier on a feature cache (emofuse extract), a JSON arrays file, or the
// generated bimodal task (--synthetic), on our WGSL kernels (--backend wgsl) or the CPU references (--backend cpu).
// Also the shared flag sets and loaders that `eval` and `ablate` use.

import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, statSync } from 'node:fs';
import {
  CpuBackend, DataError, FUSION_VARIANTS, FeatureCacheError, FusionConfigError, WgslBackend, openFeatureCache, readArraysFile,
  syntheticBimodal, train, type Backend, type FeatureSet, type FusionVariant, type TrainOptions,
} from '@emofuse/model';
import { table, UserError } from '../output.ts';

// ------------------------------------------------------------------------------------------ shared with eval, ablate

export interface DataFlags {
  features?: string;
  synthetic?: boolean;
  syntheticSeed: string;
}

export function addDataOptions(cmd: Command): Command {
  return cmd
    .option('--features <path>', "a feature cache folder (from 'emofuse extract') or a JSON arrays file (see README)")
    .option('--synthetic', 'the generated bimodal task instead (4 classes = 2 text cues x 2 audio cues; no files needed)')
    .option('--synthetic-seed <n>', 'seed of the generated task', '1');
}

export function asUserError(err: unknown): never {
  if (err instanceof DataError || err instanceof FeatureCacheError || err instanceof FusionConfigError) throw new UserError(err.message);
  throw err;
}

export function loadFeatures(f: DataFlags): { features: FeatureSet; source: string } {
  if (f.synthetic && f.features) throw new UserError('give either --features <path> or --synthetic, not both');
  if (f.synthetic) {
    const seed = int(f.syntheticSeed, '--synthetic-seed', 0);
    return { features: syntheticBimodal({ seed }), source: `synthetic bimodal task (seed ${seed})` };
  }
  if (!f.features) throw new UserError("no data: pass --features <cache folder | arrays.json> (make one with 'emofuse extract'), or --synthetic");
  if (!existsSync(f.features)) throw new UserError(`--features ${f.features}: no such file or folder`);
  try {
    if (statSync(f.features).isDirectory()) return { features: openFeatureCache(f.features), source: `feature cache ${f.features}` };
    return { features: readArraysFile(f.features), source: `arrays file ${f.features}` };
  } catch (err) {
    return asUserError(err);
  }
}

export async function openBackend(name: string): Promise<Backend> {
  if (name === 'cpu') return new CpuBackend('f32');
  if (name === 'wgsl') return WgslBackend.create();
  throw new UserError(`--backend must be 'wgsl' (our WebGPU kernels) or 'cpu' (their float64 CPU references), got '${name}'`);
}

export function int(v: string, flag: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`${flag} must be an integer >= ${min}, got '${v}'`);
  return n;
}

export function num(v: string, flag: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UserError(`${flag} must be a number >= ${min}, got '${v}'`);
  return n;
}

export interface TrainFlags extends DataFlags {
  backend: string;
  fusion: string;
  width: string;
  heads: string;
  layers: string;
  ffnMult: string;
  dropout: string;
  seed: string;
  epochs: string;
  batchSize: string;
  lr: string;
  minLr: string;
  warmup?: string;
  decay: string;
  weightDecay: string;
  maxGradNorm: string;
  patience: string;
  classWeights: string;
  maxTextLen?: string;
  maxAudioLen?: string;
  trainSplit: string;
  devSplit: string;
  saveEvery: string;
  progress: boolean;
}

/** Model and optimisation flags with the README's defaults. */
export function addTrainOptions(cmd: Command, withFusion = true): Command {
  cmd.option('--backend <name>', "'wgsl' (our WebGPU kernels) or 'cpu' (the float64 CPU references)", 'wgsl');
  if (withFusion) cmd.option('--fusion <variant>', `fusion variant: ${FUSION_VARIANTS.join(', ')}`, 'cross-self');
  return cmd
    .option('--width <C>', 'model width C', '256')
    .option('--heads <H>', 'attention heads (C/H must be a multiple of 4, at most 128)', '4')
    .option('--layers <L>', 'self-attention blocks after the cross-attention', '1')
    .option('--ffn-mult <m>', 'feed-forward width = m * C', '2')
    .option('--dropout <p>', 'dropout before the classifier', '0.1')
    .option('--seed <n>', 'seeds initialisation, shuffling and dropout', '0')
    .option('--epochs <n>', 'passes over the train split', '20')
    .option('--batch-size <B>', 'utterances per step', '32')
    .option('--lr <lr>', 'peak learning rate (AdamW)', '5e-4')
    .option('--min-lr <lr>', 'learning rate at the last step', '0')
    .option('--warmup <steps>', 'linear warm-up steps (default: 5% of all steps)')
    .option('--decay <kind>', "'cosine' or 'linear' decay after the warm-up", 'cosine')
    .option('--weight-decay <wd>', 'AdamW decoupled weight decay (matrices only)', '0.01')
    .option('--max-grad-norm <n>', 'clip the global gradient norm (0: off)', '1')
    .option('--patience <epochs>', 'stop after this many epochs without a better dev weighted F1 (0: never)', '5')
    .option('--class-weights <w>', "'inverse' (inverse class frequency), 'none', or comma-separated weights", 'inverse')
    .option('--max-text-len <n>', 'truncate text to n tokens (default: the longest in the data)')
    .option('--max-audio-len <n>', 'truncate audio to n tokens (default: the longest in the data)')
    .option('--train-split <name>', 'split to train on', 'train')
    .option('--dev-split <name>', 'split for early stopping', 'dev')
    .option('--save-every <steps>', 'also checkpoint every n steps (0: at epoch ends only)', '0')
    .option('--no-progress', 'no progress bar');
}

export function parseTrainFlags(o: TrainFlags, outDir: string, fusion?: FusionVariant): TrainOptions {
  const f = (fusion ?? o.fusion) as FusionVariant;
  if (!FUSION_VARIANTS.includes(f)) throw new UserError(`--fusion must be one of ${FUSION_VARIANTS.join(', ')}, got '${o.fusion}'`);
  if (o.decay !== 'cosine' && o.decay !== 'linear') throw new UserError(`--decay must be 'cosine' or 'linear', got '${o.decay}'`);
  let classWeights: TrainOptions['classWeights'];
  if (o.classWeights === 'inverse' || o.classWeights === 'none') classWeights = o.classWeights;
  else classWeights = o.classWeights.split(',').map((w) => num(w.trim(), '--class-weights'));
  const dropout = num(o.dropout, '--dropout');
  if (dropout >= 1) throw new UserError(`--dropout must be below 1, got ${dropout}`);
  return {
    model: {
      fusion: f, width: int(o.width, '--width'), heads: int(o.heads, '--heads'), layers: int(o.layers, '--layers', 0),
      ffnMult: int(o.ffnMult, '--ffn-mult'), dropout, seed: int(o.seed, '--seed', 0),
    },
    epochs: int(o.epochs, '--epochs'), batchSize: int(o.batchSize, '--batch-size'), lr: num(o.lr, '--lr'), minLr: num(o.minLr, '--min-lr'),
    warmup: o.warmup === undefined ? undefined : int(o.warmup, '--warmup'), decay: o.decay,
    weightDecay: num(o.weightDecay, '--weight-decay'), maxGradNorm: num(o.maxGradNorm, '--max-grad-norm'), patience: int(o.patience, '--patience', 0),
    classWeights, maxTextLen: o.maxTextLen === undefined ? undefined : int(o.maxTextLen, '--max-text-len'),
    maxAudioLen: o.maxAudioLen === undefined ? undefined : int(o.maxAudioLen, '--max-audio-len'),
    trainSplit: o.trainSplit, devSplit: o.devSplit, outDir, saveEvery: int(o.saveEvery, '--save-every', 0),
  };
}

/** A cli-progress bar over steps with loss, rate and ETA (stderr, so --json stdout stays clean). */
export function stepBar(enabled: boolean, label: string): { onStep: TrainOptions['onStep']; stop: () => void; log: (s: string) => void } {
  if (!enabled || !process.stderr.isTTY) return { onStep: undefined, stop: () => {}, log: (s) => console.error(s) };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {value}/{total} steps | epoch {epoch} | loss {loss} | {rate} steps/s | ETA {eta_formatted}`,
      stream: process.stderr, etaBuffer: 50, hideCursor: true, clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const t0 = performance.now();
  let first = 0;
  return {
    onStep: (s) => {
      if (!started) {
        bar.start(s.total, s.step - 1, { epoch: s.epoch + 1, loss: '-', rate: '-' });
        started = true;
        first = s.step - 1;
      }
      const rate = (s.step - first) / ((performance.now() - t0) / 1000);
      bar.update(s.step, { epoch: s.epoch + 1, loss: s.loss.toFixed(4), rate: rate.toFixed(2) });
    },
    stop: () => bar.stop(),
    log: (s) => (started ? process.stderr.write(`\r\x1b[2K${s}\n`) : console.error(s)),
  };
}

// ------------------------------------------------------------------------------------------ the command

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('train the attention-fusion classifier on cached features (or generated arrays)')
    .option('--out <dir>', 'run folder: last.safetensors, best.safetensors, metrics.jsonl', 'runs/train')
    .option('--resume', 'continue the run in --out from last.safetensors: model settings come from the checkpoint; give the same data and training flags to continue bit-for-bit (same backend)')
    .option('--json', 'print the result as JSON');
  addDataOptions(cmd);
  addTrainOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Data (one of):
  --features runs/cache       a feature cache written by 'emofuse extract' (splits train/dev/test)
  --features arrays.json      { classNames, textDim, audioDim, splits: { train: [{ id, label, text: [[...]], audio: [[...]] }] } }
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
  emofuse train --synthetic --backend cpu --width 16 --epochs 2                      # on the CPU references`,
  );
  cmd.action(async (o: TrainFlags & { out: string; resume?: boolean; json?: boolean }) => {
    const opts = parseTrainFlags(o, o.out);
    const { features, source } = loadFeatures(o);
    const backend = await openBackend(o.backend);
    const bar = stepBar(o.progress && !o.json, 'train');
    try {
      if (!o.json) bar.log(`emofuse train: ${source}; backend ${backend.description}; fusion ${opts.model!.fusion}${o.resume ? ' (resuming)' : ''}`);
      const r = await train(backend, features, {
        ...opts,
        resume: o.resume,
        onStep: bar.onStep,
        onEpoch: (e) => {
          if (!o.json) {
            bar.log(
              `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}  dev acc ${(100 * e.dev.accuracy).toFixed(1)}%  ` +
                `weighted F1 ${(100 * e.dev.weightedF1).toFixed(1)}  macro F1 ${(100 * e.dev.macroF1).toFixed(1)}${e.best ? '  (best)' : ''}`,
            );
          }
        },
      }).catch(asUserError);
      bar.stop();
      const summary = {
        steps: r.steps, epochs: r.epochs, bestDevWeightedF1: r.bestDevWeightedF1, bestEpoch: r.bestEpoch, stoppedEarly: r.stoppedEarly,
        seconds: r.seconds, params: r.model.numParams, config: r.model.config, best: r.bestCheckpoint, last: r.lastCheckpoint,
      };
      if (o.json) console.log(JSON.stringify(summary, null, 2));
      else {
        console.log(
          table([
            ['steps', r.steps], ['epochs', r.epochs], ['parameters', r.model.numParams],
            ['best dev weighted F1', `${(100 * r.bestDevWeightedF1).toFixed(2)} (epoch ${r.bestEpoch})`],
            ['stopped early', r.stoppedEarly ? 'yes' : 'no'], ['time', `${r.seconds.toFixed(1)} s`],
            ['best checkpoint', r.bestCheckpoint], ['metrics log', `${o.out}/metrics.jsonl`],
          ]),
        );
        console.log(`\nnext: emofuse eval --checkpoint ${r.bestCheckpoint} ${o.synthetic ? '--synthetic' : `--features ${o.features}`} --split test`);
      }
    } finally {
      bar.stop();
      await backend.destroy();
    }
  });
}
