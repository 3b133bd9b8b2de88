// CREMA-D (Crowd-sourced Emotional Multimodal Actors Dataset) in its official layout (github
// CheyneyComputerScience/CREMA-D): AudioWAV/AAAA_SSS_EEE_LL.wav, 7,442 clips of 91 actors (1001-1091) speaking 12
// sentences (SSS, CREMAD_SENTENCES) in 6 emotions (EEE: ANG, DIS, FEA, HAP, NEU, SAD) at a level LL (LO, MD, HI, or
// XX unspecified). Labels, text and speakers come from the names; the labels are the actors' intended emotions (the
// crowd's ratings in the repository's processedResults/ are not used). The clips may also sit in the data folder
// itself, or be .flac. Splits are speaker-independent, by actor: CREMAD_SPLITS (train 1001-1071, dev 1072-1081,
// test 1082-1091).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetError, type Dataset, type DatasetItem } from './types.ts';

export const CREMAD_CLASSES = ['anger', 'disgust', 'fear', 'happy', 'neutral', 'sad'] as const;
const EMOTIONS: Record<string, (typeof CREMAD_CLASSES)[number]> = {
  ANG: 'anger',
  DIS: 'disgust',
  FEA: 'fear',
  HAP: 'happy',
  NEU: 'neutral',
  SAD: 'sad',
};
const LEVELS = ['LO', 'MD', 'HI', 'XX'];
/** Sentence code -> the sentence spoken (the repository's README). */
export const CREMAD_SENTENCES: Record<string, string> = {
  IEO: "It's eleven o'clock",
  TIE: 'That is exactly what happened',
  IOM: "I'm on my way to the meeting",
  IWW: 'I wonder what this is about',
  TAI: 'The airplane is almost full',
  MTI: 'Maybe tomorrow it will be cold',
  IWL: 'I would like a new alarm clock',
  ITH: "I think I have a doctor's appointment",
  DFA: "Don't forget a jacket",
  ITS: "I think I've seen this before",
  TSI: 'The surface is slick',
  WSI: "We'll stop in a couple of minutes",
};
/** Speaker-independent splits by actor id (inclusive ranges): 71 / 10 / 10 actors. */
export const CREMAD_SPLITS = [
  { split: 'train', actors: [1001, 1071] },
  { split: 'dev', actors: [1072, 1081] },
  { split: 'test', actors: [1082, 1091] },
] as const;

const NAME = /^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.(wav|flac)$/i;
const LAYOUT = "CREMA-D's AudioWAV/1001_DFA_ANG_XX.wav (from github.com/CheyneyComputerScience/CREMA-D, a Git LFS repository)";

export function cremadSplit(actor: number): string {
  return CREMAD_SPLITS.find((s) => actor >= s.actors[0] && actor <= s.actors[1])!.split;
}

export function readCremaD(dataDir: string, options: { textOnly?: boolean } = {}): Dataset {
  const root = resolve(dataDir);
  if (!existsSync(root)) throw new DatasetError(root, `CREMA-D folder not found (expected ${LAYOUT})`);
  const audioDir = existsSync(join(root, 'AudioWAV')) && statSync(join(root, 'AudioWAV')).isDirectory() ? join(root, 'AudioWAV') : root;
  const files = readdirSync(audioDir)
    .filter((f) => /\.(wav|flac)$/i.test(f))
    .sort();
  if (files.length === 0) throw new DatasetError(audioDir, `no .wav or .flac files: expected ${LAYOUT}`);
  const seen = new Map<string, string>();
  const items: DatasetItem[] = files.map((f) => {
    const file = join(audioDir, f);
    const m = NAME.exec(f);
    if (!m)
      throw new DatasetError(
        file,
        "file name is not CREMA-D's AAAA_SSS_EEE_LL (actor, sentence, emotion, level), e.g. 1001_DFA_ANG_XX.wav",
        undefined,
        'file name',
      );
    const [, actor, sentence, emotion, level] = m as unknown as string[];
    const bad = (field: string, value: string, want: string): never => {
      throw new DatasetError(file, `${field} code '${value}': expected ${want}`, undefined, `file name: ${field}`);
    };
    const a = Number(actor);
    if (!(a >= 1001 && a <= 1091)) bad('actor', actor!, '1001-1091');
    const text =
      CREMAD_SENTENCES[sentence!.toUpperCase()] ?? bad('sentence', sentence!, `one of ${Object.keys(CREMAD_SENTENCES).join(', ')}`);
    const label =
      EMOTIONS[emotion!.toUpperCase()] ??
      bad(
        'emotion',
        emotion!,
        `one of ${Object.entries(EMOTIONS)
          .map(([k, v]) => `${k} (${v})`)
          .join(', ')}`,
      );
    if (!LEVELS.includes(level!.toUpperCase())) bad('level', level!, `one of ${LEVELS.join(', ')} (low, medium, high, unspecified)`);
    const id = f.replace(/\.(wav|flac)$/i, '');
    if (seen.has(id))
      throw new DatasetError(file, `the same recording as ${seen.get(id)}: keep one of the .wav and the .flac`, undefined, 'file name');
    seen.set(id, file);
    return {
      id,
      text,
      audio: options.textOnly ? null : file,
      label: CREMAD_CLASSES.indexOf(label),
      split: cremadSplit(a),
      speaker: actor!,
    };
  });
  const missing = CREMAD_SPLITS.filter((s) => !items.some((i) => i.split === s.split));
  const notes = missing.length
    ? [
        `${audioDir}: no recordings of actors ${missing.map((s) => `${s.actors[0]}-${s.actors[1]}`).join(', ')}: no ` +
          `${missing.map((s) => s.split).join(' or ')} split`,
      ]
    : [];
  return { name: 'crema-d', classNames: CREMAD_CLASSES, items, source: root, ...(notes.length ? { notes } : {}) };
}
