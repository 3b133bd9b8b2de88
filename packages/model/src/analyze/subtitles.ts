// Words for `analyze --text-from FILE.srt|.vtt`: subtitle cues, and the words of a segment = the cues that lie
// mostly inside it (more than half of a cue's time overlaps the segment), in order.

import { existsSync } from 'node:fs';
import { readUtf8File } from '../text-file.ts';
import { AnalyzeError } from './errors.ts';

export interface Cue {
  start: number;
  end: number;
  text: string;
}

const TIME = /(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})/;

function seconds(stamp: string): number | null {
  const m = TIME.exec(stamp.trim());
  if (!m) return null;
  return Number(m[1] ?? 0) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4]!.padEnd(3, '0')) / 1000;
}

/** `HH:MM:SS,mmm` */
export function formatSrtTime(t: number): string {
  const ms = Math.round(t * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(Math.floor(ms / 3_600_000))}:${p(Math.floor(ms / 60_000) % 60)}:${p(Math.floor(ms / 1000) % 60)},${p(ms % 1000, 3)}`;
}

/** Cues of an SRT or WebVTT file; throws AnalyzeError naming the file and the cue when a timing line is malformed. */
export function readSubtitles(file: string): Cue[] {
  if (!existsSync(file)) throw new AnalyzeError(file, 'subtitle file not found (--text-from takes an .srt or .vtt file)');
  const raw = readUtf8File(file, (detail) => new AnalyzeError(file, detail))
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n');
  const cues: Cue[] = [];
  const blocks = raw.split(/\n{2,}/);
  blocks.forEach((block, b) => {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const at = lines.findIndex((l) => l.includes('-->'));
    if (at < 0) return; // WEBVTT header, NOTE, STYLE, or an index line alone
    const [from, to] = lines[at]!.split('-->');
    const start = seconds(from!);
    const end = seconds((to ?? '').trim().split(/\s+/)[0] ?? '');
    if (start === null || end === null || end < start) {
      throw new AnalyzeError(file, `cue ${b + 1}: timing line '${lines[at]}' is not 'HH:MM:SS,mmm --> HH:MM:SS,mmm' with end >= start`);
    }
    const text = lines
      .slice(at + 1)
      .join(' ')
      .replace(/<[^>]+>/g, '')
      .trim();
    cues.push({ start, end, text });
  });
  if (!cues.length)
    throw new AnalyzeError(file, 'no subtitle cues found: expected SRT (1 / 00:00:01,000 --> 00:00:02,500 / words) or WebVTT');
  return cues.sort((a, b) => a.start - b.start);
}

/** The words of the cues that lie mostly inside [start, end). */
export function wordsBetween(cues: readonly Cue[], start: number, end: number): string {
  return cues
    .filter((c) => Math.min(end, c.end) - Math.max(start, c.start) > 0.5 * Math.max(c.end - c.start, 1e-3))
    .map((c) => c.text)
    .join(' ');
}
