// Small generated inputs for the robustness corpus: WAV files (good, float with NaN/Inf/1e30, unknown format tag,
// truncated), manifests, and a tiny real pipeline (manifest -> extract -> train at width 16 on the CPU backend)
// whose cache and checkpoint the bad-input cases start from. Everything lives in one temp folder. The corpus runs
// the CLI through test/helpers/cli.ts.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** A mono WAV: 16-bit PCM (format 1) or 32-bit float (format 3); `formatTag` overrides the header's tag. */
export function wav(samples: ArrayLike<number>, o: { rate?: number; float?: boolean; formatTag?: number; channels?: number } = {}): Buffer {
  const rate = o.rate ?? 16000;
  const ch = o.channels ?? 1;
  const bps = o.float ? 4 : 2;
  const data = Buffer.alloc(samples.length * bps * ch);
  for (let i = 0; i < samples.length; i++) {
    for (let c = 0; c < ch; c++) {
      const at = (i * ch + c) * bps;
      if (o.float) data.writeFloatLE(samples[i]!, at);
      else data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32767))), at);
    }
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(o.formatTag ?? (o.float ? 3 : 1), 20);
  h.writeUInt16LE(ch, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * bps * ch, 28);
  h.writeUInt16LE(bps * ch, 32);
  h.writeUInt16LE(bps * 8, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** A tone of `seconds` at `hz`, with a little deterministic noise so no two clips are equal. */
export function tone(hz: number, seconds = 0.4, rate = 16000, seed = 1): Float32Array {
  const n = Math.round(seconds * rate);
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = 0.3 * Math.sin((2 * Math.PI * hz * i) / rate) + 0.02 * (s / 2 ** 32 - 0.5);
  }
  return x;
}

export const CLASSES = ['angry', 'happy', 'neutral', 'sad'];
const WORDS: Record<string, string> = {
  angry: 'I hate this so much',
  happy: 'what a wonderful day',
  neutral: 'the meeting is at noon',
  sad: 'I miss her every day',
};
const PITCH: Record<string, number> = { angry: 330, happy: 440, neutral: 220, sad: 160 };

/** A manifest dataset of 4 classes x `perClass` clips across train/dev/test, clips in <dir>/wav. */
export function makeManifestDataset(dir: string, perClass = 4): string {
  mkdirSync(join(dir, 'wav'), { recursive: true });
  const rows = ['id,text,audio,label,split'];
  const splits = ['train', 'train', 'dev', 'test'];
  CLASSES.forEach((label, c) => {
    for (let k = 0; k < perClass; k++) {
      const id = `${label}-${k}`;
      writeFileSync(join(dir, 'wav', `${id}.wav`), wav(tone(PITCH[label]! * (1 + 0.03 * k), 0.4, 16000, c * 100 + k)));
      rows.push(`${id},${WORDS[label]},wav/${id}.wav,${label},${splits[k % splits.length]}`);
    }
  });
  const file = join(dir, 'manifest.csv');
  writeFileSync(file, rows.join('\n') + '\n');
  return file;
}

/** sha256 and mtime of every file under `dir` (relative paths), to prove nothing pre-existing was changed. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile())
        out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex') + ':' + statSync(p).mtimeMs);
    }
  };
  walk(dir);
  return out;
}

/** Files of `before` that are changed or gone in `after`. */
export function modified(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...before].filter(([k, v]) => after.get(k) !== v).map(([k]) => k);
}

export function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => execFile(cmd, args, (err) => (err ? rej(err) : res())));
}
