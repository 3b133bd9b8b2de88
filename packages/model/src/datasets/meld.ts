// MELD in its official layout: {train,dev,test}_sent_emo.csv (columns Sr No., Utterance, Speaker, Emotion,
// Sentiment, Dialogue_ID, Utterance_ID, ...) and the MELD.Raw media folders train_splits/, dev_splits_complete/,
// output_repeated_splits_test/ holding dia{Dialogue_ID}_utt{Utterance_ID}.mp4 (or .wav). Media may also sit flat
// in the data folder. Text-only mode needs no media. Curly quotes and mojibake are cleaned (cleanText).

import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { readUtf8File } from '../text-file.ts';
import { classIndex, cleanText, DatasetError, type Dataset, type DatasetItem } from './types.ts';

export const MELD_CLASSES = ['neutral', 'joy', 'surprise', 'anger', 'sadness', 'disgust', 'fear'] as const;
const SPLITS = [
  { split: 'train', csv: 'train_sent_emo.csv', media: ['train_splits', 'train'] },
  { split: 'dev', csv: 'dev_sent_emo.csv', media: ['dev_splits_complete', 'dev_splits', 'dev'] },
  { split: 'test', csv: 'test_sent_emo.csv', media: ['output_repeated_splits_test', 'test_splits', 'test'] },
];

export interface MeldOptions {
  textOnly?: boolean;
  /** Folder(s) to search for media besides the official ones (default: the data folder itself). */
  mediaDirs?: string[];
}

export function readMELD(dataDir: string, options: MeldOptions = {}): Dataset {
  const root = resolve(dataDir);
  const found = SPLITS.filter((s) => existsSync(join(root, s.csv)));
  if (found.length === 0) {
    throw new DatasetError(root, `no MELD CSVs here: expected ${SPLITS.map((s) => s.csv).join(', ')} (from declare-lab/MELD data/MELD/)`);
  }
  const items: DatasetItem[] = [];
  let missingMedia = 0;
  for (const s of found) {
    const file = join(root, s.csv);
    const text = readUtf8File(file, (detail) => new DatasetError(file, detail));
    let rows: Record<string, string>[];
    try {
      rows = parse(text, { columns: true, bom: true, skip_empty_lines: true, relax_quotes: true });
    } catch (err) {
      throw new DatasetError(file, `cannot parse CSV: ${(err as Error).message} (is this an official MELD CSV?)`);
    }
    const dirs = [...s.media.map((m) => join(root, m)), ...(options.mediaDirs ?? [root])].filter((d) => existsSync(d));
    const listing = new Map<string, string>();
    for (const d of dirs.slice().reverse()) for (const f of readdirSync(d)) listing.set(f, join(d, f));
    const seen = new Set<string>();
    rows.forEach((row, i) => {
      for (const f of ['Utterance', 'Emotion', 'Dialogue_ID', 'Utterance_ID']) {
        if (row[f] === undefined) throw new DatasetError(file, `missing column '${f}' (is this an official MELD CSV?)`, i + 2, f);
      }
      for (const f of ['Dialogue_ID', 'Utterance_ID']) {
        if (!/^\d{1,9}$/.test(row[f]!.trim()))
          throw new DatasetError(file, `${f} '${row[f]!.slice(0, 40)}' is not a whole number (is this an official MELD CSV?)`, i + 2, f);
      }
      const base = `dia${row.Dialogue_ID!.trim()}_utt${row.Utterance_ID!.trim()}`;
      // the id is the utterance's key in the feature cache: a second row with it would overwrite the first's features
      if (seen.has(base))
        throw new DatasetError(
          file,
          `a second row for dialogue ${row.Dialogue_ID!.trim()}, utterance ${row.Utterance_ID!.trim()}: each utterance once`,
          i + 2,
          'Utterance_ID',
        );
      seen.add(base);
      const audio = options.textOnly ? null : (listing.get(`${base}.wav`) ?? listing.get(`${base}.mp4`) ?? null);
      if (!options.textOnly && !audio) missingMedia++;
      items.push({
        id: `${s.split}/${base}`,
        text: cleanText(row.Utterance ?? ''),
        audio,
        // Row numbers count the header as row 1, as a spreadsheet shows them.
        label: classIndex(row.Emotion!, MELD_CLASSES, file, i + 2, 'Emotion'),
        split: s.split,
        ...(row.Speaker ? { speaker: row.Speaker } : {}),
      });
    });
  }
  if (!options.textOnly && missingMedia === items.length) {
    throw new DatasetError(
      root,
      `none of the ${items.length} utterances has a media file (looked for dia{D}_utt{U}.mp4/.wav in ` +
        `${SPLITS.flatMap((s) => s.media[0]).join(', ')} and the data folder): ` +
        `add the MELD.Raw folders, or pass --text-only`,
    );
  }
  const missing = SPLITS.filter((s) => !found.includes(s));
  const notes = missing.length
    ? [
        `${root}: no ${missing.map((s) => s.csv).join(', ')}: the cache has ${found.map((s) => s.split).join(' and ')} only (add ` +
          `the CSV${missing.length > 1 ? 's' : ''} for ${missing.map((s) => s.split).join(', ')})`,
      ]
    : [];
  return { name: 'meld', classNames: MELD_CLASSES, items, source: root, ...(notes.length ? { notes } : {}) };
}
