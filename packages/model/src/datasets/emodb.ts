// EmoDB (Berlin Database of Emotional Speech) in its published layout: wav/SSTTTEV.wav (speaker SS, text code TTT,
// emotion letter E, version V), plus TRANSCRIPTS.tsv (code, German text, English text). Labels come from the
// file names (the letters are EmoDB's own definition; the audio_labels.csv shipped beside the assets' copy
// disagrees with them on 186 of 535 files, swapping happiness/disgust/fear, so it is not used). Splits are speaker-independent: speakers 10
// (m) and 14 (f) are dev, 15 (m) and 16 (f) are test, the other six train.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetError, type Dataset, type DatasetItem } from './types.ts';

export const EMODB_CLASSES = ['neutral', 'happiness', 'boredom', 'anger', 'sadness', 'disgust', 'fear'] as const;
const LETTERS: Record<string, (typeof EMODB_CLASSES)[number]> = {
  N: 'neutral',
  F: 'happiness',
  L: 'boredom',
  W: 'anger',
  T: 'sadness',
  E: 'disgust',
  A: 'fear',
};
export const EMODB_SPLITS: Record<string, string> = { '10': 'dev', '14': 'dev', '15': 'test', '16': 'test' };

export function readEmoDB(dataDir: string, options: { textOnly?: boolean; language?: 'en' | 'de' } = {}): Dataset {
  const root = resolve(dataDir);
  const wavDir = existsSync(join(root, 'wav')) ? join(root, 'wav') : root;
  if (!existsSync(wavDir)) throw new DatasetError(root, 'EmoDB folder not found (expected wav/SSTTTEV.wav files)');
  const texts = new Map<string, string>();
  const transcripts = join(root, 'TRANSCRIPTS.tsv');
  if (existsSync(transcripts)) {
    for (const line of readFileSync(transcripts, 'utf8').split('\n').slice(1)) {
      const [code, de, en] = line.split('\t');
      if (code) texts.set(code.trim(), ((options.language ?? 'en') === 'de' ? de : en)?.trim() ?? '');
    }
  }
  const files = readdirSync(wavDir)
    .filter((f) => /\.wav$/i.test(f))
    .sort();
  if (files.length === 0) throw new DatasetError(wavDir, 'no .wav files: is this the EmoDB folder (wav/03a01Fa.wav ...)?');
  const items: DatasetItem[] = files.map((f, i) => {
    const m = /^(\d\d)([a-z]\d\d)([A-Z])([a-z])\.wav$/i.exec(f);
    if (!m)
      throw new DatasetError(
        join(wavDir, f),
        "file name is not EmoDB's SSTTTEV.wav (speaker, text code, emotion letter, version)",
        i + 1,
        'file name',
      );
    const [, speaker, code, letter] = m;
    const label = LETTERS[letter!.toUpperCase()];
    if (!label)
      throw new DatasetError(
        join(wavDir, f),
        `unknown emotion letter '${letter}': expected one of ${Object.keys(LETTERS).join(', ')}`,
        i + 1,
        'file name',
      );
    return {
      id: f.replace(/\.wav$/i, ''),
      text: texts.get(code!) ?? '',
      audio: options.textOnly ? null : join(wavDir, f),
      label: EMODB_CLASSES.indexOf(label),
      split: EMODB_SPLITS[speaker!] ?? 'train',
      speaker: speaker!,
    };
  });
  return { name: 'emodb', classNames: EMODB_CLASSES, items, source: root };
}
