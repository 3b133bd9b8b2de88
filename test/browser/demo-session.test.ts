// The demo page's speaker session for a --speaker-norm checkpoint (issue 19 item 5), in headless Chromium: the page
// takes everything classified since it loaded (or since "New speaker") as one speaker, as `emofuse analyze` takes a
// recording, and standardizes each utterance with the session's running statistics, the first with the checkpoint's
// pooled train statistics. Checked against the code analyze runs, in Node: Predictor.predict with a `recording`
// (SpeakerSums) fed the same clips in the same order. A checkpoint trained here with --speaker-norm on
// --speaker-norm-mix 0.5 on hash + logmel features of generated clips of four "speakers" (pitch and loudness).
// Skipped, with the reason, where no Chromium is installed (CI installs it and sets EMOFUSE_REQUIRE_BROWSER=1).

import { execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { existsSync, readFileSync } from 'node:fs';
import { CpuBackend, DEFAULT_ASR, modelSettings, pickClips, Predictor, SpeakerSums, writeAssembled, type Prediction } from '@emofuse/model';
import { bin, buildCli, emofuse, root } from '../helpers/cli.ts';
import { CHROMIUM, maxDiff, openPage, startDemo, stopDemo, type DemoSegment, type OpenPage } from './chromium.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const skipReason = CHROMIUM ? '' : 'no Chromium (apt-get install chromium)';
const whisperDir = join(modelSettings.modelsDir, DEFAULT_ASR);
const recordingSkip = !existsSync(join(modelSettings.assetsDir, 'ravdess', 'manifest.csv'))
  ? `no RAVDESS assets at ${modelSettings.assetsDir}`
  : existsSync(join(whisperDir, 'onnx', 'decoder_model_merged.onnx'))
    ? ''
    : `no converted Whisper tiny.en at ${whisperDir} (python3 scripts/convert_whisper.py)`;
if (!CHROMIUM && process.env.EMOFUSE_REQUIRE_BROWSER === '1') throw new Error('EMOFUSE_REQUIRE_BROWSER=1 but no Chromium found');

/**
 * |p_page - p_node| per class: the same encoders on the same decoded samples, the same statistics (float64 sums,
 * float32 mean and std), the model on our WGSL kernels on SwiftShader in the page and on the CPU references in Node.
 */
const TOL = 1e-5;

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-demo-session-'));
let server: ChildProcess | undefined;
let p: OpenPage;
let checkpoint = '';
let plain = '';

/** A 16-bit mono WAV at 22.05 kHz: a speaker's pitch and loudness, the clip's vibrato and a little noise. */
function writeClip(file: string, seconds: number, hz: number, amp: number, seed: number): void {
  const rate = 22050;
  const n = Math.round(seconds * rate);
  const s = new Int16Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const t = i / rate;
    const env = Math.min(1, t * 20, (seconds - t) * 20);
    const v = amp * env * Math.sin(2 * Math.PI * hz * t + 3 * Math.sin(2 * Math.PI * 5 * t)) + 0.02 * (x / 2 ** 32 - 0.5);
    s[i] = Math.round(v * 32767);
  }
  const w = new WaveFile();
  w.fromScratch(1, rate, '16', s);
  writeFileSync(file, w.toBuffer());
}

/** The utterances spoken into the page, in order: one new speaker (pitch and loudness none of the train speakers has). */
const utterances = [
  { id: 'u1', text: 'I am so happy today', hz: 610, amp: 0.7 },
  { id: 'u2', text: 'this is really terrible', hz: 240, amp: 0.6 },
  { id: 'u3', text: 'what a lovely morning', hz: 560, amp: 0.65 },
].map((u, i) => ({ ...u, wav: join(tmp, `${u.id}.wav`), seconds: 0.9 + 0.15 * i }));

/** The train clips' words: the same for both classes (the class is in the sound), so no word decides alone. */
const WORDS = ['I am so happy today', 'this is really terrible', 'what a lovely morning'];

/** 24 clips of four speakers, two classes by pitch; a --speaker-norm checkpoint and a plain one on their features. */
async function trainCheckpoints(): Promise<void> {
  const data = join(tmp, 'data');
  mkdirSync(data);
  const rows = ['id,text,audio,label,split,speaker'];
  for (let i = 0; i < 24; i++) {
    const high = i % 2 === 0;
    const k = Math.floor(i / 2) % 4; // speakers s0..s3, each with both classes
    writeClip(join(data, `c${i}.wav`), 0.8 + 0.04 * i, (high ? 480 : 160) * (1 + 0.15 * k) + 7 * i, 0.2 + 0.15 * k, i + 1);
    rows.push(`c${i},${WORDS[i % WORDS.length]},c${i}.wav,${high ? 'high' : 'low'},${i < 16 ? 'train' : 'dev'},s${k}`);
  }
  writeFileSync(join(data, 'manifest.csv'), rows.join('\n') + '\n');
  const ex = await emofuse([
    'extract',
    '--dataset',
    'manifest',
    '--data',
    join(data, 'manifest.csv'),
    '--out',
    join(tmp, 'cache'),
    '--no-progress',
  ]);
  expect(ex.code, ex.stderr).toBe(0);
  const common = ['--features', join(tmp, 'cache'), '--width', '16', '--heads', '2', '--epochs', '2'];
  const args = [...common, '--batch-size', '4', '--lr', '1e-3', '--no-progress'];
  const sn = await emofuse(['train', ...args, '--speaker-norm', 'on', '--speaker-norm-mix', '0.5', '--out', join(tmp, 'run-sn')]);
  expect(sn.code, sn.stderr).toBe(0);
  const pl = await emofuse(['train', ...args, '--out', join(tmp, 'run-plain')]);
  expect(pl.code, pl.stderr).toBe(0);
  checkpoint = join(tmp, 'run-sn', 'best.safetensors');
  plain = join(tmp, 'run-plain', 'best.safetensors');
}

/** Node's reference: analyze's code (Predictor.predict with a recording) over `list` in order; and each as a lone clip. */
async function reference(list: typeof utterances): Promise<{ running: Prediction[]; lone: Prediction[] }> {
  const predictor = await Predictor.open(new CpuBackend('f32'), checkpoint);
  const c = predictor.model.config;
  const recording = new SpeakerSums(c.textDim, c.audioDim);
  const running: Prediction[] = [];
  const lone: Prediction[] = [];
  try {
    for (const u of list) {
      running.push(...(await predictor.predict([{ id: u.id, audio: u.wav, text: u.text }], undefined, undefined, { recording })));
      lone.push(...(await predictor.predict([{ id: u.id, audio: u.wav, text: u.text }])));
    }
  } finally {
    await predictor.dispose();
  }
  return { running, lone };
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  await buildCli();
  await run(process.execPath, [`${root}packages/demo/build.mjs`]);
  await trainCheckpoints();
  for (const u of utterances) writeClip(u.wav, u.seconds, u.hz, u.amp, 1000 + u.hz);
  const started = await startDemo(bin, ['--checkpoint', checkpoint]);
  server = started.server;
  const url = started.url;
  p = await openPage(url, { profile: join(tmp, 'profile') });
  await p.waitFor(`!!window.emofuseDemo && window.emofuseDemo.ready`, 'the page to load the checkpoint', 120_000);
}, 300_000);

afterAll(async () => {
  await p?.close();
  await stopDemo(server);
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

interface PageResult {
  probabilities: Record<string, number>;
  standardization: { by: 'train' } | { by: 'session'; utterances: number } | null;
}

/** The page's classification of `u` (its WAV chosen, its words typed, Classify clicked), and the line it shows. */
async function classify(u: (typeof utterances)[number], modalities = 'both'): Promise<PageResult & { shown: string | null }> {
  await p.chooseFile('clip-file', u.wav);
  await p.waitFor(`document.getElementById('clip-name').textContent.startsWith('${u.id}.wav')`, `the page to read ${u.id}.wav`);
  await p.page(
    `(() => { window.emofuseDemo.result = null; document.getElementById('text').value = ${JSON.stringify(u.text)}; ` +
      `document.getElementById('modalities').value = ${JSON.stringify(modalities)}; ` +
      `document.getElementById('classify').click(); })()`,
  );
  await p.waitFor(
    `!window.emofuseDemo.busy && (!!window.emofuseDemo.result || !!window.emofuseDemo.error)`,
    `the classification of ${u.id}`,
  );
  const st = await p.page<{ error: string | null; result: PageResult }>('window.emofuseDemo');
  expect(st.error, st.error ?? '').toBeNull();
  const shown = await p.page<string | null>(
    `(() => { const e = document.getElementById('standardization'); return e.hidden ? null : e.textContent; })()`,
  );
  return { ...st.result, shown };
}

describe.skipIf(!CHROMIUM)(`the demo page's speaker session${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let ref: Awaited<ReturnType<typeof reference>>;

  it('the first utterance gets the train statistics, later ones the session running statistics, as analyze computes them', async () => {
    const st = await p.page<{ webgpu: boolean; backend: string; error: string | null }>('window.emofuseDemo');
    expect(st.error, st.error ?? '').toBeNull();
    console.log(`page backend: ${st.backend}`);
    expect(st.webgpu, 'the page found no WebGPU adapter in Chromium').toBe(true);
    expect(await p.page<boolean>(`document.getElementById('session').hidden`)).toBe(false);
    expect(await p.page<number | null>('window.emofuseDemo.session')).toBe(0);
    ref = await reference(utterances);
    expect(ref.running.map((r) => r.standardization)).toEqual(['train', 'recording', 'recording']);
    for (const [i, u] of utterances.entries()) {
      const got = await classify(u);
      const want = ref.running[i]!;
      const dRunning = maxDiff(got.probabilities, want.probabilities);
      const dLone = maxDiff(got.probabilities, ref.lone[i]!.probabilities);
      console.log(
        `${u.id}: page ${JSON.stringify(got.standardization)} "${got.shown}"; page vs analyze's running statistics ` +
          `${dRunning.toExponential(2)}, vs a lone clip (train statistics) ${dLone.toExponential(2)}`,
      );
      expect(dRunning).toBeLessThanOrEqual(TOL);
      expect(await p.page<number>('window.emofuseDemo.session')).toBe(i + 1);
      if (i === 0) {
        expect(got.standardization).toEqual({ by: 'train' });
        expect(got.shown).toBe('standardization: train');
        expect(dLone).toBeLessThanOrEqual(TOL);
      } else {
        expect(got.standardization).toEqual({ by: 'session', utterances: i + 1 });
        expect(got.shown).toBe(`standardization: session (${i + 1} utterances)`);
        // the session's statistics are not the train statistics: the check above could not pass without them
        expect(dLone).toBeGreaterThan(100 * TOL);
      }
    }
  }, 300_000);

  it('"New speaker" starts a new session: the next utterance gets the train statistics again', async () => {
    await p.page(`document.getElementById('new-speaker').click()`);
    expect(await p.page<number>('window.emofuseDemo.session')).toBe(0);
    expect(await p.page<string>(`document.getElementById('session-state').textContent`)).toMatch(/^no utterances yet/);
    const u = utterances[2]!;
    const got = await classify(u);
    expect(got.standardization).toEqual({ by: 'train' });
    expect(got.shown).toBe('standardization: train');
    expect(maxDiff(got.probabilities, ref.lone[2]!.probabilities)).toBeLessThanOrEqual(TOL);
    expect(maxDiff(got.probabilities, ref.running[2]!.probabilities)).toBeGreaterThan(100 * TOL);
    // the next one: the session of the two
    const next = await classify(utterances[0]!);
    expect(next.standardization).toEqual({ by: 'session', utterances: 2 });
    const again = await reference([u, utterances[0]!]);
    expect(maxDiff(next.probabilities, again.running[1]!.probabilities)).toBeLessThanOrEqual(TOL);
    // words only: a lone clip (train statistics), kept out of the session (its statistics are of words and sound)
    const words = await classify(utterances[1]!, 'text');
    expect(words.standardization).toEqual({ by: 'train' });
    expect(await p.page<number>('window.emofuseDemo.session')).toBe(2);
    expect((await classify(utterances[1]!)).standardization).toEqual({ by: 'session', utterances: 3 });
  }, 300_000);

  it('without --speaker-norm: no session control and no standardization line; loading a checkpoint clears the session', async () => {
    await p.chooseFile('checkpoint-file', plain);
    await p.waitFor(
      `!window.emofuseDemo.busy && window.emofuseDemo.checkpoint === 'best.safetensors' && window.emofuseDemo.session === null`,
      'the plain checkpoint',
    );
    expect(await p.page<boolean>(`document.getElementById('session').hidden`)).toBe(true);
    const got = await classify(utterances[1]!);
    expect(got.standardization).toBeNull();
    expect(got.shown).toBeNull();
    const predictor = await Predictor.open(new CpuBackend('f32'), plain);
    const want = await predictor
      .predict([{ id: 'u2', audio: utterances[1]!.wav, text: utterances[1]!.text }])
      .finally(() => predictor.dispose());
    expect(want[0]!.standardization).toBeUndefined();
    expect(maxDiff(got.probabilities, want[0]!.probabilities)).toBeLessThanOrEqual(TOL);
    // the --speaker-norm checkpoint again: a new, empty session
    await p.chooseFile('checkpoint-file', checkpoint);
    await p.waitFor(`!window.emofuseDemo.busy && window.emofuseDemo.session === 0`, 'the --speaker-norm checkpoint again');
    expect(await p.page<boolean>(`document.getElementById('session').hidden`)).toBe(false);
    expect((await classify(utterances[1]!)).standardization).toEqual({ by: 'train' });
  }, 300_000);

  it.skipIf(!!recordingSkip)(
    `a dropped recording in a new session: its segments standardized as emofuse analyze standardizes them, segment by ` +
      `segment${recordingSkip ? ` (skipped: ${recordingSkip})` : ''}`,
    async () => {
      const rec = await writeAssembled(
        join(tmp, 'rec'),
        'talk',
        { clips: pickClips(modelSettings.assetsDir, { count: 3, seed: 5, corpora: ['ravdess'] }), seed: 5 },
        ['wav'],
      );
      const an = await emofuse(['analyze', rec.audio.wav!, '--checkpoint', checkpoint, '--out', join(tmp, 'report')], {
        timeoutMs: 300_000,
      });
      expect(an.code, an.stderr).toBe(0);
      const want = readFileSync(join(tmp, 'report', 'segments.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as DemoSegment & { standardization?: 'train' | 'recording' });
      await p.page(`document.getElementById('new-speaker').click()`);
      await p.chooseFile('clip-file', rec.audio.wav!);
      await p.waitFor(`document.getElementById('clip-name').textContent.startsWith('talk.wav')`, 'the page to read talk.wav');
      await p.page(`document.getElementById('analyse').click()`);
      await p.waitFor(`window.emofuseDemo.segmenting === null && !window.emofuseDemo.busy`, 'the segments of the recording', 300_000);
      const st = await p.page<{
        error: string | null;
        segments: (DemoSegment & { standardization?: PageResult['standardization'] })[];
      }>('window.emofuseDemo');
      expect(st.error, st.error ?? '').toBeNull();
      const got = st.segments;
      let ok = 0;
      for (const [i, w] of want.entries()) {
        const g = got[i]!;
        const d = w.probabilities && g?.probabilities ? maxDiff(g.probabilities, w.probabilities) : 0;
        console.log(
          `${w.start.toFixed(3)}-${w.end.toFixed(3)} s ${w.status} ${w.emotion} ${w.standardization} "${w.text}" | page ` +
            `${g?.start.toFixed(3)}-${g?.end.toFixed(3)} ${g?.status} ${g?.emotion} ${JSON.stringify(g?.standardization)}; max |dp| ` +
            d.toExponential(2),
        );
        expect([g.start, g.end, g.status, g.text, g.emotion]).toEqual([w.start, w.end, w.status, w.text, w.emotion]);
        expect(d).toBeLessThanOrEqual(TOL);
        if (w.status !== 'ok') continue;
        ok += 1;
        expect(g.standardization).toEqual(w.standardization === 'train' ? { by: 'train' } : { by: 'session', utterances: ok });
        expect(w.standardization).toBe(ok === 1 ? 'train' : 'recording');
      }
      expect(got.length).toBe(want.length);
      expect(ok).toBeGreaterThanOrEqual(2);
      expect(await p.page<number>('window.emofuseDemo.session')).toBe(ok);
      // the table says which, per segment
      const rows = await p.page<string[]>(`[...document.querySelectorAll('#segment-rows tr')].map((r) => r.lastChild.textContent)`);
      expect(rows.filter((r) => r === 'train' || r.startsWith('session ('))).toHaveLength(ok);
    },
    600_000,
  );
});
