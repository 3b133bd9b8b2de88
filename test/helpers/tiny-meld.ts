// The fine-tuning tests' text fixture: MELD's first 40 train and 20 dev utterances (the offline assets' meld-text)
// as a dataset folder, and their feature cache through the tiny random BERT (test/fixtures/models/tiny-random-bert).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractFeatures, openDataset } from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { createBertEncoder } from '../../packages/model/src/encoders/transformers.ts';

/** Writes the MELD subset to `<dir>/meld` and its tiny-BERT text-only cache to `cache`; returns the dataset folder. */
export async function tinyMeldCache(dir: string, cache: string, bert: string): Promise<string> {
  const meld = join(modelSettings.assetsDir, 'meld-text');
  const data = join(dir, 'meld');
  mkdirSync(data);
  for (const [f, n] of [
    ['train_sent_emo.csv', 41],
    ['dev_sent_emo.csv', 21],
  ] as const)
    writeFileSync(join(data, f), `${readFileSync(join(meld, f), 'utf8').split('\n').slice(0, n).join('\n')}\n`);
  const enc = await createBertEncoder(bert);
  await extractFeatures({ dataset: openDataset('meld', data, { textOnly: true }), textEncoder: enc, audioEncoder: null, out: cache });
  await enc.dispose?.();
  return data;
}
