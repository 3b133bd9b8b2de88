// Resuming a text-encoder fine-tuning run (packages/model/src/train/finetune-text.ts) exactly: stopped between epochs
// and again mid-epoch (stopAfterSteps, as train's resume tests stop), then resumed, the run's files (the best epoch's
// delta and the last state: every trained encoder and head tensor with both AdamW moments) equal an uninterrupted run's
// byte for byte. The tiny random BERT fixture on 40 MELD train utterances (5 steps an epoch), every block and the
// embeddings trained with layer-wise decay, the head's dropout on. Needs the MELD text of the offline assets.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyMeldCache } from '../helpers/tiny-meld.ts';
import { OrtBackend } from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import {
  FINETUNED_FILE,
  FINETUNED_LAST_FILE,
  finetuneText,
  type FinetuneTextOptions,
} from '../../packages/model/src/train/finetune-text.ts';

const meld = join(modelSettings.assetsDir, 'meld-text');
const have = existsSync(join(meld, 'dev_sent_emo.csv'));
const bert = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-finetune-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!have)(`finetune-text --resume, tiny random BERT${have ? '' : ` (skipped: no ${meld})`}`, () => {
  const cache = join(tmp, 'cache');
  beforeAll(async () => {
    await tinyMeldCache(tmp, cache, bert);
  }, 120_000);

  const opts = (outDir: string, over: Partial<FinetuneTextOptions> = {}): FinetuneTextOptions => ({
    features: cache,
    modelFolder: bert,
    modelSpec: bert,
    trainTop: 3,
    textLr: 3e-3,
    layerDecay: 0.8,
    lr: 1e-3,
    epochs: 3,
    batchSize: 8,
    seed: 3,
    width: 16,
    heads: 2,
    maxTextLen: 64,
    weightDecay: 0.01,
    outDir,
    ...over,
  });
  const files = (dir: string) => [FINETUNED_FILE, FINETUNED_LAST_FILE].map((f) => readFileSync(join(dir, f)));

  it('stopped after epoch 1 and at step 12, then resumed: both files equal the uninterrupted run byte for byte', async () => {
    const run = async (o: FinetuneTextOptions) => {
      const be = OrtBackend.create({ threads: 1 }); // a fresh backend each time, as a new process would have
      try {
        return await finetuneText(be, o);
      } finally {
        await be.destroy();
      }
    };
    const straight = join(tmp, 'straight');
    const s = await run(opts(straight));
    expect(s).toMatchObject({ steps: 15, interrupted: false });
    const dir = join(tmp, 'stopped');
    const a = await run(opts(dir, { stopAfterSteps: 5 })); // the end of epoch 1 (40 utterances, batches of 8)
    expect(a).toMatchObject({ steps: 5, interrupted: true });
    expect(a.epochs).toHaveLength(1);
    const b = await run(opts(dir, { resume: true, stopAfterSteps: 12 })); // mid-epoch 3
    expect(b).toMatchObject({ steps: 12, interrupted: true });
    const c = await run(opts(dir, { resume: true }));
    expect(c).toMatchObject({ steps: 15, interrupted: false, bestEpoch: s.bestEpoch, bestDevWeightedF1: s.bestDevWeightedF1 });
    expect(c.epochs.map((e) => e.loss)).toEqual(s.epochs.map((e) => e.loss));
    const [want, got] = [files(straight), files(dir)];
    expect(got[0]!.equals(want[0]!), `${FINETUNED_FILE} differs`).toBe(true);
    expect(got[1]!.equals(want[1]!), `${FINETUNED_LAST_FILE} differs`).toBe(true);
    // and the resume did something: the state after step 5 is not the final one
    expect(c.epochs.map((e) => e.loss)[2]).not.toBe(c.epochs.map((e) => e.loss)[0]);
  }, 300_000);

  it('refuses a new run over a fine-tuning run, a resume with other settings, and a resume with nothing to resume', async () => {
    const dir = join(tmp, 'refusals');
    const be = OrtBackend.create({ threads: 1 });
    try {
      await finetuneText(be, opts(dir, { epochs: 1, stopAfterSteps: 2 }));
      await expect(finetuneText(be, opts(dir, { epochs: 1 }))).rejects.toThrow(/already holds a fine-tuning run.*--resume.*--force/);
      await expect(finetuneText(be, opts(dir, { epochs: 1, resume: true, textLr: 1e-3 }))).rejects.toThrow(
        /started with --text-lr 0.003, now 0.001: give the run's value/,
      );
      await expect(finetuneText(be, opts(join(tmp, 'empty'), { resume: true }))).rejects.toThrow(/nothing to resume/);
      const again = await finetuneText(be, opts(dir, { epochs: 1, force: true }));
      expect(again).toMatchObject({ steps: 5, interrupted: false });
    } finally {
      await be.destroy();
    }
  }, 300_000);
});
