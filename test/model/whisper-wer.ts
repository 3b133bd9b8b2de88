// Word error rate helpers shared by the real-Whisper tests (whisper-real.test.ts, whisper-base-real.test.ts): the
// reference transcripts of the 4 MELD clips (see whisper-real.test.ts's header for why the test CSV and how a clip
// that runs on is matched), normalisation to words, and the word-level edit distance.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';

export const MELD_CLIPS = ['dia0_utt0', 'dia100_utt1', 'dia100_utt5', 'dia101_utt0'];

const seconds = (t: string) =>
  t
    .split(/[:,]/)
    .map(Number)
    .reduce((acc, v, i) => (i < 3 ? acc * 60 + v : acc + v / 1000), 0);

/** The reference transcript of clip diaD_uttU (see the file comment). */
export function meldReference(id: string, clipSeconds: number): string {
  const own = join(modelSettings.assetsDir, 'meld-text', 'test_sent_emo.csv');
  const file = existsSync(own) ? own : join(import.meta.dirname, '../fixtures/meld-test-rows.csv');
  const rows = parse(readFileSync(file, 'utf8'), { columns: true, bom: true }) as Record<string, string>[];
  const [, d, u] = /^dia(\d+)_utt(\d+)$/.exec(id)!;
  const dialogue = rows.filter((r) => r.Dialogue_ID === d).sort((a, b) => Number(a.Utterance_ID) - Number(b.Utterance_ID));
  const first = dialogue.find((r) => r.Utterance_ID === u);
  if (!first) throw new Error(`${file} has no row for dialogue ${d}, utterance ${u}`);
  const start = seconds(first.StartTime!);
  return dialogue
    .filter((r) => Number(r.Utterance_ID) >= Number(u) && seconds(r.EndTime!) - start <= clipSeconds + 0.25)
    .map((r) => r.Utterance)
    .join(' ');
}

/** Lower case, curly quotes straightened, punctuation dropped (apostrophes inside words kept). */
export const words = (s: string) =>
  s
    .toLowerCase()
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[^a-z0-9' ]+/g, ' ')
    .replace(/(^| )'|'( |$)/g, ' ')
    .split(/\s+/)
    .filter(Boolean);

/** Word-level Levenshtein distance: substitutions + deletions + insertions. */
export function editDistance(ref: string[], hyp: string[]): number {
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hyp.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[hyp.length]!;
}

/** Lower case, punctuation dropped, German letters kept (ä ö ü ß). */
export const germanWords = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9äöüß ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
