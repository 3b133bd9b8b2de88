// A tiny audio + text corpus for fine-tuning tests: 0.3 s tones in RAVDESS's release layout, extracted with the tiny
// random BERT fixture (text) and logmel (audio). Emotion 01..04 sets the pitch, statement 01/02 the text; actors 01 and
// 02 give 12 train clips, actor 17 gives 4 dev clips.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import wavefilePkg from 'wavefile';
import { extractFeatures, openDataset } from '@emofuse/model';
import { createAudioEncoder } from '../../packages/model/src/encoders/index.ts';
import { createBertEncoder } from '../../packages/model/src/encoders/transformers.ts';

const { WaveFile } = wavefilePkg;

/** The tiny random BERT fixture (its ONNX file has the layout of the converted MiniLM). */
export const TINY_BERT = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');

/** Writes the clips under `dir`/ravdess and their feature cache to `dir`/cache; returns the cache folder. */
export async function toneRavdessCache(dir: string): Promise<string> {
  const root = join(dir, 'ravdess');
  let k = 0;
  for (const actor of ['01', '02', '17'])
    for (const [emotion, statement] of actor === '17'
      ? [
          ['01', '01'],
          ['02', '02'],
          ['03', '01'],
          ['04', '02'],
        ]
      : [
          ['01', '01'],
          ['02', '02'],
          ['03', '01'],
          ['04', '02'],
          ['01', '02'],
          ['03', '02'],
        ]) {
      mkdirSync(join(root, `Actor_${actor}`), { recursive: true });
      const wav = new WaveFile();
      const f = 150 * Number(emotion) + 7 * k++;
      wav.fromScratch(
        1,
        16000,
        '16',
        Array.from({ length: 4800 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * f * i) / 16000))),
      );
      writeFileSync(join(root, `Actor_${actor}`, `03-01-${emotion}-01-${statement}-01-${actor}.wav`), wav.toBuffer());
    }
  const out = join(dir, 'cache');
  const text = await createBertEncoder(TINY_BERT);
  await extractFeatures({
    dataset: openDataset('ravdess', root),
    textEncoder: text,
    audioEncoder: await createAudioEncoder('logmel'),
    out,
  });
  await text.dispose?.();
  return out;
}
