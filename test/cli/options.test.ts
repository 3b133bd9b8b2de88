// The shared flags (packages/cli/src/options.ts) in-process: their defaults are the model's constants, the
// backend flag lists the registry, and bad values stop with a user error that names the flag.

import { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BACKEND_NAMES,
  COMMAND_FLAGS,
  DEFAULT_BACKEND,
  DEFAULT_FUSION,
  DataError,
  FUSION_VARIANTS,
  TRAIN_DEFAULTS,
  ablationMarkdown,
  ablationTable,
  checkResumeSettings,
  flagOf,
  storedSettings,
  trainSettings,
  type FlagName,
  type TrainOptions,
} from '@emofuse/model';
import { registerAblate } from '../../packages/cli/src/commands/ablate.ts';
import { registerEval } from '../../packages/cli/src/commands/eval.ts';
import { registerTrain } from '../../packages/cli/src/commands/train.ts';
import { addDataOptions, addTrainOptions, openBackend, parseTrainFlags, type TrainFlags } from '../../packages/cli/src/options.ts';
import { UserError } from '../../packages/cli/src/output.ts';
import { buildCli, emofuse } from '../helpers/cli.ts';

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
      epochs: T.epochs,
      batchSize: T.batchSize,
      lr: T.lr,
      minLr: T.minLr,
      warmup: undefined,
      decay: T.decay,
      weightDecay: T.weightDecay,
      maxGradNorm: T.maxGradNorm,
      patience: T.patience,
      classWeights: T.classWeights,
      trainSplit: T.trainSplit,
      devSplit: T.devSplit,
      saveEvery: T.saveEvery,
      outDir: 'out',
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
    expect(() => parseTrainFlags(trainFlags(['--fusion', 'sum']), 'out')).toThrow(
      new UserError(`--fusion: 'sum' is not a fusion variant; choose one of ${FUSION_VARIANTS.join(', ')}`),
    );
    expect(() => parseTrainFlags(trainFlags(['--decay', 'step']), 'out')).toThrow(/--decay must be 'cosine' or 'linear', got 'step'/);
    expect(() => parseTrainFlags(trainFlags(['--epochs', '0']), 'out')).toThrow(/--epochs must be an integer >= 1, got '0'/);
  });
});

describe('the training settings schema (TRAIN_SETTINGS)', () => {
  it("each setting is one flag that commander reads under the setting's name, with the default the model uses", () => {
    const cmd = new Command();
    addTrainOptions(cmd);
    for (const [name, s] of trainSettings()) {
      const option = cmd.options.find((o) => o.long === s.flag);
      expect(option, s.flag).toBeDefined();
      expect(option!.attributeName(), s.flag).toBe(name);
      const modelDefault =
        s.in === 'model' ? DEFAULT_FUSION[name as keyof typeof DEFAULT_FUSION] : TRAIN_DEFAULTS[name as keyof typeof TRAIN_DEFAULTS];
      expect(s.default, name).toBe(modelDefault);
    }
    // the CLI's other training flags: --backend and --no-progress (not settings of the run)
    expect(cmd.options.map((o) => o.long).sort()).toEqual([...trainSettings().map(([, s]) => s.flag), '--backend', '--no-progress'].sort());
    // ablate's: every setting but those of one run (it sets --fusion per run)
    const ablate = addTrainOptions(new Command(), false);
    expect(ablate.options.map((o) => o.long).sort()).toEqual(
      [
        ...trainSettings()
          .filter(([, s]) => !s.perRun)
          .map(([, s]) => s.flag),
        '--backend',
        '--no-progress',
      ].sort(),
    );
    expect(ablate.options.map((o) => o.long)).not.toContain('--fusion');
  });

  it('a switch and the settings without a default parse as given', () => {
    const o = parseTrainFlags(trainFlags(['--no-standardize', '--warmup', '7', '--max-audio-len', '9', '--linear-skip', 'off']), 'out');
    expect(o).toMatchObject({ standardize: false, warmup: 7, maxAudioLen: 9, maxTextLen: undefined, model: { linearSkip: false } });
  });

  it('every option the model names in a message is declared by a command (flagOf)', () => {
    const program = new Command();
    for (const register of [registerTrain, registerEval, registerAblate]) register(program);
    const declared = new Set(program.commands.flatMap((c) => c.options.map((o) => o.long)));
    for (const name of Object.keys(COMMAND_FLAGS) as FlagName[]) expect(declared, flagOf(name)).toContain(flagOf(name));
    for (const [name, s] of trainSettings()) expect(flagOf(name)).toBe(s.flag);
  });

  it('--resume refuses a changed setting that shapes the run, naming its flag; the free ones may change, --epochs may grow', () => {
    const base: TrainOptions = { epochs: 4, batchSize: 8, lr: 1e-3, outDir: 'out', model: { width: 16 } };
    const stored = storedSettings(base);
    expect(stored).toMatchObject({
      epochs: 4,
      batchSize: 8,
      width: 16,
      heads: DEFAULT_FUSION.heads,
      warmup: null,
      classWeights: 'none',
      standardize: true,
    });
    const check =
      (o: Partial<TrainOptions>, step = 16) =>
      () =>
        checkResumeSettings(stored, storedSettings({ ...base, ...o }), 'run/last.safetensors', step, 32);
    expect(check({ patience: 1, saveEvery: 3, epochs: 9 })).not.toThrow();
    expect(check({ model: { width: 32 } })).toThrow(DataError);
    expect(check({ model: { width: 32 } })).toThrow(/--width: the run has 16, given 32/);
    expect(check({ standardize: false, classWeights: [1, 2] })).toThrow(
      /--no-standardize: the run has on, given off\n {2}--class-weights: the run has none, given 1,2/,
    );
    expect(check({ epochs: 3 }, 16)).toThrow(/--epochs 3 is below the 4 epoch\(s\) already trained/);
    expect(check({ warmup: 5 })).toThrow(/only --epochs may grow, and --patience, --save-every and --stop-after-steps may change/);
    // a checkpoint from before settings were stored, or before a setting existed, is not checked for it
    expect(() => checkResumeSettings(undefined, storedSettings({ ...base, lr: 1 }), 'x', 0, 32)).not.toThrow();
    const { lr: _, ...older } = stored;
    expect(() => checkResumeSettings(older, storedSettings({ ...base, lr: 1 }), 'x', 0, 32)).not.toThrow();
  });
});

describe('a setting added as one schema entry: train --stop-after-steps (the bundled CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emofuse-options-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops with last.safetensors and the command that continues; that command finishes the run; ablate has no such flag', async () => {
    await buildCli();
    const out = join(dir, 'run');
    const args = [
      'train',
      '--synthetic',
      '--width',
      '16',
      '--heads',
      '2',
      '--epochs',
      '2',
      '--backend',
      'cpu',
      '--no-progress',
      '--out',
      out,
    ];
    const stopped = await emofuse([...args, '--stop-after-steps', '5']);
    expect(stopped.code, stopped.stderr).toBe(0);
    const again = /Continue with:\n\s+emofuse (.*)\n/.exec(stopped.stderr)?.[1];
    expect(again, stopped.stderr).toBe(`${args.join(' ')} --resume`);
    const resumed = await emofuse([...again!.split(' '), '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ steps: 16, epochs: 2 });
    const ablate = await emofuse(['ablate', '--synthetic', '--stop-after-steps', '5', '--out', join(dir, 'ablate')]);
    expect(ablate.code).not.toBe(0);
    expect(ablate.stderr).toMatch(/unknown option '--stop-after-steps'/);
  });
});

describe('ablation table', () => {
  const row = (fusion: 'cross-self' | 'text', wf1: number, seeds: number[]) => ({
    fusion,
    seeds,
    weightedF1: wf1,
    weightedF1Std: 0.05,
    macroF1: 0.5,
    accuracy: 0.75,
    params: 1234,
    trainSeconds: 2.25,
    epochs: 3,
  });
  const result = (seeds: number[]) => ({
    data: 'd',
    testSplit: 'test',
    testSize: 8,
    budget: 'b',
    backend: 'cpu',
    rows: [row('cross-self', 0.9, seeds), row('text', 0.5, seeds)],
  });

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
