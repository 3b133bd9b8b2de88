// The shared flags (packages/cli/src/options.ts) in-process: their defaults are the model's constants, the
// backend flag lists the registry, and bad values stop with a user error that names the flag.

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { BACKEND_NAMES, DEFAULT_BACKEND, DEFAULT_FUSION, FUSION_VARIANTS, TRAIN_DEFAULTS, ablationMarkdown, ablationTable } from '@emofuse/model';
import { addDataOptions, addTrainOptions, openBackend, parseTrainFlags, type TrainFlags } from '../../packages/cli/src/options.ts';
import { UserError } from '../../packages/cli/src/output.ts';

function trainFlags(args: string[], withFusion = true): TrainFlags {
  const cmd = new Command().exitOverride();
  addDataOptions(cmd);
  addTrainOptions(cmd, withFusion);
  cmd.parse(args, { from: 'user' });
  return cmd.opts<TrainFlags>();
}

describe('shared CLI options', () => {
  it('with no flags, parse to the model constants (DEFAULT_FUSION, TRAIN_DEFAULTS, DEFAULT_BACKEND)', () => {
    const flags = trainFlags(['--synthetic']);
    expect(flags.backend).toBe(DEFAULT_BACKEND);
    const o = parseTrainFlags(flags, 'out');
    expect(o.model).toEqual(DEFAULT_FUSION);
    const T = TRAIN_DEFAULTS;
    expect(o).toMatchObject({
      epochs: T.epochs, batchSize: T.batchSize, lr: T.lr, minLr: T.minLr, warmup: undefined, decay: T.decay, weightDecay: T.weightDecay,
      maxGradNorm: T.maxGradNorm, patience: T.patience, classWeights: T.classWeights, trainSplit: T.trainSplit, devSplit: T.devSplit,
      saveEvery: T.saveEvery, outDir: 'out',
    });
  });

  it('flags override the defaults; without --fusion (ablate) the model options carry no fusion', () => {
    const o = parseTrainFlags(trainFlags(['--lr', '3e-3', '--width', '32', '--fusion', 'gate', '--class-weights', '1,2']), 'out');
    expect(o).toMatchObject({ lr: 3e-3, model: { width: 32, fusion: 'gate' }, classWeights: [1, 2] });
    expect(parseTrainFlags(trainFlags(['--width', '32'], false), 'out', false).model).not.toHaveProperty('fusion');
  });

  it('--backend lists every registered backend in --help, and an unknown one is a user error naming the flag', async () => {
    const cmd = new Command();
    addTrainOptions(cmd);
    const help = cmd.helpInformation().replace(/\s+/g, ' ');
    for (const name of BACKEND_NAMES) expect(help).toContain(`'${name}'`);
    const err = await openBackend('tpu').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^--backend must be 'wgsl' .* got 'tpu'$/);
  });

  it('a bad --fusion or --decay names the flag and the choices', () => {
    expect(() => parseTrainFlags(trainFlags(['--fusion', 'sum']), 'out')).toThrow(new UserError(`--fusion: 'sum' is not a fusion variant; choose one of ${FUSION_VARIANTS.join(', ')}`));
    expect(() => parseTrainFlags(trainFlags(['--decay', 'step']), 'out')).toThrow(/--decay must be 'cosine' or 'linear', got 'step'/);
    expect(() => parseTrainFlags(trainFlags(['--epochs', '0']), 'out')).toThrow(/--epochs must be an integer >= 1, got '0'/);
  });
});

describe('ablation table', () => {
  const row = (fusion: 'cross-self' | 'text', wf1: number, seeds: number[]) => ({
    fusion, seeds, weightedF1: wf1, weightedF1Std: 0.05, macroF1: 0.5, accuracy: 0.75, params: 1234, trainSeconds: 2.25, epochs: 3,
  });
  const result = (seeds: number[]) => ({ data: 'd', testSplit: 'test', testSize: 8, budget: 'b', backend: 'cpu', rows: [row('cross-self', 0.9, seeds), row('text', 0.5, seeds)] });

  it('one row per variant; ± std only with several seeds; the Markdown holds the same cells', () => {
    expect(ablationTable(result([0])).cells).toEqual([
      ['cross-self', '90.0', '50.0', '75.0', 1234, '2.3', '3'],
      ['text', '50.0', '50.0', '75.0', 1234, '2.3', '3'],
    ]);
    expect(ablationTable(result([0, 1])).cells[0]![1]).toBe('90.0 ± 5.0');
    const md = ablationMarkdown(result([0]));
    expect(md).toContain('| fusion | weighted F1 | macro F1 | accuracy | params | train s | epochs |\n|---|---:|---:|---:|---:|---:|---:|');
    expect(md).toContain('| text | 50.0 | 50.0 | 75.0 | 1234 | 2.3 | 3 |');
  });
});
