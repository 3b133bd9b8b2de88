// `emofuse analyze` as a user runs it (the bundled CLI in a child process) on an assembled recording: the four
// outputs and --json events; kill -9 in the middle, then the same command finishes with the same segments; each
// segment's emotion equals `emofuse predict` on that stretch cut out; a folder with an index; bad input exits 2
// with a message and no stack trace; with the real Whisper tiny.en (skipped with the reason when it is absent), the
// words come from speech recognition and predict on the cut agrees.

import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_ASR,
  decodeStream,
  modelSettings,
  pickClips,
  writeAssembled,
  writeWavF32,
  type AnalyzedSegment,
  type AssembledFiles,
} from '@emofuse/model';
import { smallCheckpoint } from '../model/analyze-helpers.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = `${root}packages/cli/dist/emofuse.js`;
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-cli-analyze-'));
const assets = modelSettings.assetsDir;
const have = existsSync(join(assets, 'ravdess')) && existsSync(join(assets, 'emodb'));
const whisperDir = join(modelSettings.modelsDir, DEFAULT_ASR);
const haveWhisper = existsSync(join(whisperDir, 'onnx', 'decoder_model_merged.onnx'));
const whisperReason = `no converted Whisper tiny.en at ${whisperDir}: run 'python3 scripts/convert_whisper.py'`;

async function emofuse(args: string[], timeout = 120_000) {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { timeout, env: { ...process.env, EMOFUSE_OFFLINE: '1' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const readSegments = (dir: string): AnalyzedSegment[] =>
  readFileSync(join(dir, 'segments.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

async function decodeAll(file: string): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for await (const x of decodeStream(file)) parts.push(x);
  const all = new Float32Array(parts.reduce((a, x) => a + x.length, 0));
  parts.reduce((at, x) => (all.set(x, at), at + x.length), 0);
  return all;
}

let ckpt: string;
let rec: AssembledFiles;
beforeAll(async () => {
  await run(process.execPath, [`${root}packages/cli/build.mjs`]);
  ckpt = await smallCheckpoint(join(tmp, 'small.safetensors'));
  if (have)
    rec = await writeAssembled(join(tmp, 'rec'), 'talk', { clips: pickClips(assets, { count: 16, seed: 11 }), seed: 11 }, [
      'wav',
      'mp3',
      'm4a',
    ]);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('emofuse analyze: bad input', () => {
  it('exits 2 with a message naming the problem, never a stack trace', async () => {
    const notMedia = join(tmp, 'notes.m4a');
    writeFileSync(notMedia, 'plain text\n'.repeat(100));
    const cases: [string[], RegExp][] = [
      [['analyze', join(tmp, 'nope.mp3'), '--out', join(tmp, 'o'), '--checkpoint', ckpt], /nope\.mp3: file not found/],
      [
        ['analyze', notMedia, '--out', join(tmp, 'o'), '--checkpoint', ckpt, '--backend', 'cpu'],
        /notes\.m4a: not a recording ffmpeg can read/,
      ],
      [['analyze', join(tmp, 'nope2.mp3'), '--out', join(tmp, 'o')], /nope2\.mp3: file not found/], // no --checkpoint: the shipped model
      [['analyze', notMedia, '--checkpoint', ckpt], /--out <dir> is required/],
      [['analyze', notMedia, '--out', join(tmp, 'o'), '--checkpoint', ckpt, '--max-segment', 'x'], /--max-segment/],
    ];
    for (const [args, re] of cases) {
      const r = await emofuse(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe.skipIf(!have)(`emofuse analyze on an assembled recording${have ? '' : ` (skipped: no assets at ${assets})`}`, () => {
  let segments: AnalyzedSegment[];
  const out = join(tmp, 'report');

  it('writes segments.jsonl/.csv, timeline.svg/.png, summary.md; --json streams one event per segment', async () => {
    const r = await emofuse([
      'analyze',
      rec.audio.mp3!,
      '--out',
      out,
      '--checkpoint',
      ckpt,
      '--text-from',
      rec.srt,
      '--backend',
      'cpu',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    segments = readSegments(out);
    expect(segments.length).toBeGreaterThanOrEqual(rec.truth.clips.length - 2);
    expect(events.filter((e) => e.event === 'segment').map(({ event: _, ...s }) => s)).toEqual(segments);
    expect(events.at(-1)).toMatchObject({ event: 'done', stopped: false, segments: segments.length });
    for (const f of ['segments.csv', 'timeline.svg', 'timeline.png', 'summary.md', 'state.json'])
      expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/## Share of speech time per emotion[\s\S]*## Strongest moments/);
    // a segment gets a cue's words when most of the cue lies inside it (a clip the VAD splits leaves a part without)
    const judged = segments.filter((s) => s.status === 'ok');
    expect(judged.filter((s) => s.text.length > 0).length).toBeGreaterThanOrEqual(0.8 * judged.length);
  });

  it("each segment's emotion equals `emofuse predict` on that stretch cut out as a clip", async () => {
    const all = await decodeAll(rec.audio.mp3!);
    const judged = segments.filter((s) => s.status === 'ok');
    for (const s of [judged[0]!, judged[Math.floor(judged.length / 2)]!, judged.at(-1)!]) {
      const cut = join(tmp, `cut-${s.index}.wav`);
      writeWavF32(cut, all.slice(Math.round(s.start * 16_000), Math.round(s.end * 16_000)));
      const p = await emofuse(['predict', '--checkpoint', ckpt, '--audio', cut, '--text', s.text, '--backend', 'cpu', '--json']);
      expect(p.code, p.stderr).toBe(0);
      const want = JSON.parse(p.stdout);
      expect(s.emotion).toBe(want.predicted);
      expect(s.probabilities).toEqual(want.probabilities);
    }
  });

  it('kill -9 in the middle, then the same command continues after the last finished segment and ends with the same segments', async () => {
    const again = join(tmp, 'report-killed');
    const args = [bin, 'analyze', rec.audio.mp3!, '--out', again, '--checkpoint', ckpt, '--text-from', rec.srt, '--backend', 'cpu'];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise((res) => child.on('exit', res));
    const jsonl = join(again, 'segments.jsonl');
    const lines = () => (existsSync(jsonl) ? readFileSync(jsonl, 'utf8').split('\n').length - 1 : 0);
    const t0 = Date.now();
    while (lines() < 3 && Date.now() - t0 < 60_000) await new Promise((res) => setTimeout(res, 20));
    child.kill('SIGKILL');
    await exited;
    const before = lines();
    expect(before).toBeGreaterThanOrEqual(3);
    expect(before, 'killed before the end').toBeLessThan(segments.length);
    expect(existsSync(join(again, 'summary.md'))).toBe(false);
    const r = await emofuse(args.slice(1));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`\\(\\d+ judged, ${before} from the earlier run\\)`));
    expect(readSegments(again)).toEqual(segments);
  });

  it('a folder: one report per recording and an index; a bad file is listed and the exit code is 2', async () => {
    const dir = join(tmp, 'folder');
    mkdirSync(dir, { recursive: true });
    copyFileSync(rec.audio.m4a!, join(dir, 'a.m4a'));
    copyFileSync(rec.audio.wav!, join(dir, 'b.wav'));
    writeFileSync(join(dir, 'c.mp3'), 'not audio');
    const reports = join(tmp, 'reports');
    const r = await emofuse(['analyze', dir, '--out', reports, '--checkpoint', ckpt, '--text-from', rec.srt, '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/c\.mp3: not a recording ffmpeg can read/);
    for (const f of ['a.m4a', 'b.wav']) expect(existsSync(join(reports, f, 'timeline.png')), f).toBe(true);
    const index = readFileSync(join(reports, 'index.md'), 'utf8');
    expect(index).toMatch(/\| a\.m4a \|/);
    expect(index).toMatch(/\| b\.wav \|/);
    expect(index).toMatch(/\| c\.mp3 \| - \| - \| failed: /);
    // AAC vs PCM
    expect(Math.abs(readSegments(join(reports, 'b.wav')).length - readSegments(join(reports, 'a.m4a')).length)).toBeLessThanOrEqual(1);
  });

  describe.skipIf(!haveWhisper)(`with the real Whisper tiny.en${haveWhisper ? '' : ` (skipped: ${whisperReason})`}`, () => {
    it('transcribes each segment; predict without --text on the cut gives the same words and emotion', async () => {
      const short = await writeAssembled(join(tmp, 'rec'), 'short', {
        clips: pickClips(assets, { count: 4, seed: 12, corpora: ['ravdess', 'emodb'] }),
        seed: 12,
      });
      const o = join(tmp, 'report-asr');
      const r = await emofuse(['analyze', short.audio.wav!, '--out', o, '--checkpoint', ckpt, '--backend', 'cpu'], 300_000);
      expect(r.code, r.stderr).toBe(0);
      const segs = readSegments(o).filter((s) => s.status === 'ok');
      expect(segs.length).toBeGreaterThanOrEqual(3);
      for (const s of segs) expect(s.textFrom).toBe('asr');
      expect(segs.filter((s) => s.text.length > 0).length).toBeGreaterThanOrEqual(3);
      const all = await decodeAll(short.audio.wav!);
      const s = segs[0]!;
      const cut = join(tmp, 'cut-asr.wav');
      writeWavF32(cut, all.slice(Math.round(s.start * 16_000), Math.round(s.end * 16_000)));
      const p = await emofuse(['predict', '--checkpoint', ckpt, '--audio', cut, '--backend', 'cpu', '--json'], 300_000);
      expect(p.code, p.stderr).toBe(0);
      const want = JSON.parse(p.stdout);
      expect(s.text).toBe(want.text);
      expect(s.emotion).toBe(want.predicted);
      expect(s.probabilities).toEqual(want.probabilities);
    });
  });
});
