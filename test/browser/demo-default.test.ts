// `emofuse demo` with no --checkpoint, in headless Chromium: the page loads the shipped default model and runs its
// encoders in the page (all-MiniLM-L6-v2 through transformers.js, Whisper tiny.en's sliced encoder through
// onnxruntime-web) and the fusion on our WGSL kernels. Checked against `emofuse predict` (Node: onnxruntime-node,
// the ort or wgsl backend) on RAVDESS dev clips (actors 17-18, converted to WAV):
//   - a WAV with its words: the page's probabilities equal predict's within TOL;
//   - a text-only and an audio-only utterance (issue 19): the page equals the model's own forward and the ONNX export;
//   - Chromium's fake microphone: the page cuts the utterance with the VAD and shows its emotion;
//   - a dropped assembled recording: the page's segments are `emofuse analyze`'s (boundaries within a VAD frame,
//     same emotions).
// Skipped, with the reason, without Chromium, the RAVDESS assets or the converted encoders (CI sets
// EMOFUSE_REQUIRE_BROWSER=1, and then a missing Chromium fails).

import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointSpeakerFallback,
  CpuBackend,
  createAudioEncoder,
  createTextEncoder,
  DEFAULT_MODEL,
  exportCheckpointToOnnx,
  type FeatureBatch,
  loadAudio,
  loadCheckpoint,
  loadOnnxRuntime,
  padBatch,
  runOnnx,
  softmax,
  standardizeRow,
} from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';
import { bin, buildCli, emofuse, root } from '../helpers/cli.ts';
import { CHROMIUM, maxDiff, openPage, startDemo, stopDemo, type DemoSegment, type OpenPage } from './chromium.ts';

const ravdess = join(modelSettings.assetsDir, 'ravdess');
const needs: [boolean, string][] = [
  [!!CHROMIUM, 'no Chromium (apt-get install chromium)'],
  [existsSync(join(ravdess, 'manifest.csv')), `no RAVDESS assets at ${ravdess}`],
  [
    existsSync(join(modelSettings.modelsDir, 'sentence-transformers/all-MiniLM-L6-v2/onnx/model.onnx')),
    'no converted all-MiniLM-L6-v2 (python3 scripts/convert_minilm.py)',
  ],
  [
    existsSync(join(modelSettings.modelsDir, 'Xenova/whisper-tiny.en/onnx/encoder_model.onnx')),
    'no converted Whisper tiny.en (python3 scripts/convert_whisper.py)',
  ],
];
const skipReason = needs.find(([ok]) => !ok)?.[1] ?? '';
if (!CHROMIUM && process.env.EMOFUSE_REQUIRE_BROWSER === '1') throw new Error('EMOFUSE_REQUIRE_BROWSER=1 but no Chromium found');

/**
 * |p_page - p_predict| per class: the same encoders on the same samples (onnxruntime-web's wasm in the page,
 * onnxruntime-node in predict) and the same fusion model (our WGSL kernels on SwiftShader; ort or wgsl in Node):
 * float32 sums in another order, through a 3-layer Whisper and a 6-layer MiniLM.
 */
const TOL = 1e-3;

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-demo-default-'));
let server: ChildProcess | undefined;
let url = '';
let p: OpenPage;
/** $EMOFUSE_DEMO_DEFAULT_SCREENSHOT: where the page with the assembled recording's segments is saved (docs/demo.png). */
const screenshot = process.env.EMOFUSE_DEMO_DEFAULT_SCREENSHOT;

/** RAVDESS dev clips (actors 17-18) of distinct emotions, as 16-bit 16 kHz WAV (the FLAC decoded by ffmpeg). */
const clips: { id: string; text: string; label: string; audio: string; wav: string }[] = [];

function pickClips(): void {
  const rows = readFileSync(join(ravdess, 'manifest.csv'), 'utf8').trim().split('\n').slice(1);
  const seen = new Set<string>();
  for (const row of rows) {
    const [id, text, audio, label, split] = row.split(',');
    if (split !== 'dev' || seen.has(label!) || clips.length >= 3) continue;
    seen.add(label!);
    clips.push({ id: id!, text: text!, label: label!, audio: join(ravdess, audio!), wav: join(tmp, `${id}.wav`) });
  }
}

beforeAll(async () => {
  if (skipReason) return;
  await buildCli();
  await run(process.execPath, [`${root}packages/demo/build.mjs`]);
  pickClips();
  for (const c of clips) await run('ffmpeg', ['-v', 'error', '-y', '-i', c.audio, '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', c.wav]);
  // the fake microphone's sound: the first clip between 1.5 s silences (Chromium plays it in a loop)
  const mic = join(tmp, 'microphone.wav');
  await run('ffmpeg', ['-v', 'error', '-y', '-i', clips[0]!.wav, '-af', 'adelay=1500,apad=pad_dur=1.5', '-c:a', 'pcm_s16le', mic]);
  ({ server, url } = await startDemo(bin));
  p = await openPage(url, { profile: join(tmp, 'profile'), fakeMicrophone: mic });
  await p.waitFor(`!!window.emofuseDemo && window.emofuseDemo.ready`, 'the page to load the shipped model', 240_000);
}, 420_000);

afterAll(async () => {
  await p?.close();
  await stopDemo(server);
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

/** The page's classification of the chosen clip with `text` ('' and asr off: no words) and the modalities given. */
async function classify(file: string | null, text: string, modalities = 'both'): Promise<Record<string, number>> {
  if (file) {
    await p.chooseFile('clip-file', file);
    const name = file.slice(file.lastIndexOf('/') + 1);
    await p.waitFor(`document.getElementById('clip-name').textContent.startsWith(${JSON.stringify(name)})`, `the page to read ${name}`);
  }
  await p.page(
    // a new speaker session each time (a --speaker-norm model): each utterance is a lone clip, as predict takes it
    `(() => { document.getElementById('new-speaker').click(); window.emofuseDemo.result = null; ` +
      `document.getElementById('text').value = ${JSON.stringify(text)}; ` +
      `document.getElementById('modalities').value = ${JSON.stringify(modalities)}; document.getElementById('classify').click(); })()`,
  );
  await p.waitFor(`!window.emofuseDemo.busy && (!!window.emofuseDemo.result || !!window.emofuseDemo.error)`, 'the classification', 180_000);
  const st = await p.page<{ error: string | null; result: { probabilities: Record<string, number> } }>('window.emofuseDemo');
  expect(st.error, st.error ?? '').toBeNull();
  return st.result.probabilities;
}

describe.skipIf(!!skipReason)(`the demo page on the shipped model${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('loads the shipped model by default and says which it is and its licence', async () => {
    const st = await p.page<{ checkpoint: string; webgpu: boolean; backend: string; error: string | null }>('window.emofuseDemo');
    expect(st.error, st.error ?? '').toBeNull();
    expect(st.checkpoint).toBe('emofuse-default.safetensors');
    console.log(`page backend: ${st.backend}`);
    expect(st.webgpu, 'the page found no WebGPU adapter in Chromium').toBe(true);
    expect(await p.page<string>(`document.getElementById('model-licence').textContent`)).toMatch(/CC BY-NC-SA 4\.0.*non-commercial/);
    expect(await p.page<string>(`document.getElementById('model-about').textContent`)).toMatch(/MELD's 7 emotions/);
    expect(await p.page<string>(`document.getElementById('encoders').textContent`)).toMatch(
      /^text bert:sentence-transformers\/all-MiniLM-L6-v2 \(bert-v1:.*\); audio whisper \(whisper-v2:layer2:sliced8:/,
    );
  });

  it('a RAVDESS dev WAV with its words: the probabilities of emofuse predict, within 1e-3', async () => {
    for (const c of clips) {
      const want = await emofuse(['predict', '--audio', c.wav, '--text', c.text, '--json']);
      expect(want.code, want.stderr).toBe(0);
      const w = JSON.parse(want.stdout) as { probabilities: Record<string, number>; predicted: string };
      const got = await classify(c.wav, c.text);
      const d = maxDiff(got, w.probabilities);
      console.log(`${c.id} (${c.label}): predict says ${w.predicted}; page vs predict max |probability difference| ${d.toExponential(2)}`);
      expect(d).toBeLessThanOrEqual(TOL);
      expect(await p.page<string>(`document.getElementById('predicted').textContent`)).toBe(w.predicted);
    }
  }, 600_000);

  it('a text-only and an audio-only utterance (issue 19): the page equals the model forward and the ONNX export', async () => {
    // Node's reference: the shipped model on the float CPU references and its ONNX export on onnxruntime-node, fed the
    // Node encoders' features with the other modality absent (zero tokens, masked), as mixed-corpus training has them.
    const { model, meta } = loadCheckpoint(new CpuBackend('f32'), DEFAULT_MODEL.file);
    const c = model.config;
    const te = await createTextEncoder(meta.textEncoder);
    const ae = await createAudioEncoder(meta.audioEncoder);
    // the page names the encoders by the same versions (its SHA-256 of the model files is node:crypto's)
    expect(await p.page<string>(`document.getElementById('encoders').textContent`)).toBe(
      `text ${te.id} (${te.version}); audio ${ae.id} (${ae.version})`,
    );
    const session = await loadOnnxRuntime().InferenceSession.create((await exportCheckpointToOnnx(DEFAULT_MODEL.file)).onnx);
    // absent: one masked zero token (the page gives none at all; padBatch pads both to the same masked zeros)
    const none = (C: number) => ({ tokens: new Float32Array(C), mask: new Float32Array(1), T: 1 });
    try {
      const clip = clips[1]!;
      for (const modalities of ['text', 'audio'] as const) {
        const t = modalities === 'text' ? await te.encode([clip.text]) : none(c.textDim);
        const a = modalities === 'audio' ? await ae.encode([loadAudio(clip.wav, { sampleRate: ae.sampleRate })]) : none(c.audioDim);
        const fb: FeatureBatch = {
          ids: [clip.id],
          labels: Int32Array.of(-1),
          text: t.tokens,
          textMask: t.mask,
          Tt: t.T,
          audio: a.tokens,
          audioMask: a.mask,
          Ta: a.T,
        };
        const probs = (p: ArrayLike<number>) => Object.fromEntries(meta.classNames.map((k, i) => [k, p[i]!]));
        // a --speaker-norm model: our forward reads a lone clip standardized by its pooled train statistics (the ONNX export
        // has them folded in, so it reads fb raw)
        const fallback = checkpointSpeakerFallback(meta, DEFAULT_MODEL.file);
        const lone = { ...fb, text: fb.text.slice(), audio: fb.audio.slice() };
        if (fallback) standardizeRow(lone, 0, fallback);
        const logits = await model.predict(padBatch(lone, 1, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim)); // [1, K]
        const forward = probs(softmax(logits, 0, c.numClasses));
        const onnx = probs((await runOnnx(session, loadOnnxRuntime(), fb, c)).probabilities);
        const got = await classify(modalities === 'audio' ? clip.wav : null, modalities === 'text' ? clip.text : '', modalities);
        const [dForward, dOnnx] = [maxDiff(got, forward), maxDiff(got, onnx)];
        console.log(
          `${modalities} only (${clip.id}): page vs forward (cpu) ${dForward.toExponential(2)}, ` +
            `page vs ONNX export ${dOnnx.toExponential(2)}; ` +
            `page ${JSON.stringify(got)}`,
        );
        expect(dForward).toBeLessThanOrEqual(TOL);
        expect(dOnnx).toBeLessThanOrEqual(TOL);
        // the other modality really is absent: its result differs from the utterance with both
        expect(maxDiff(got, await classify(clip.wav, clip.text))).toBeGreaterThan(TOL);
      }
    } finally {
      await session.release();
      await te.dispose?.();
      await ae.dispose?.();
    }
  }, 600_000);

  it('a dropped assembled recording: the segments of emofuse analyze (boundaries within a VAD frame, same emotions)', async () => {
    const rec = join(tmp, 'rec');
    await run(process.execPath, [
      `${root}scripts/assemble-recording.mjs`,
      '--out',
      rec,
      '--name',
      'mix',
      '--count',
      '6',
      '--formats',
      'wav',
      '--assets',
      modelSettings.assetsDir,
    ]);
    const wav = join(rec, 'mix.wav');
    const a = await emofuse(['analyze', wav, '--out', join(tmp, 'report')], { timeoutMs: 600_000 });
    expect(a.code, a.stderr).toBe(0);
    const want = readFileSync(join(tmp, 'report', 'segments.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DemoSegment);
    await p.chooseFile('clip-file', wav);
    await p.waitFor(`document.getElementById('clip-name').textContent.startsWith('mix.wav')`, 'the page to read mix.wav');
    await p.page(`document.getElementById('new-speaker').click(); document.getElementById('analyse').click()`); // analyze's one recording
    await p.waitFor(`window.emofuseDemo.segmenting === null && !window.emofuseDemo.busy`, 'the segments of the recording', 400_000);
    const st = await p.page<{ error: string | null; segments: DemoSegment[] }>('window.emofuseDemo');
    expect(st.error, st.error ?? '').toBeNull();
    const got = st.segments;
    const frame = 512 / 16_000;
    for (const [i, w] of want.entries()) {
      const g = got[i]!;
      console.log(
        `${w.start.toFixed(3)}-${w.end.toFixed(3)} s ${w.status} ${w.emotion} "${w.text}" | ` +
          `page ${g?.start.toFixed(3)}-${g?.end.toFixed(3)} ` +
          `${g?.status} ${g?.emotion} "${g?.text}"` +
          (w.probabilities && g?.probabilities ? ` max |dp| ${maxDiff(g.probabilities, w.probabilities).toExponential(2)}` : ''),
      );
    }
    expect(got.length).toBe(want.length);
    expect(want.filter((w) => w.status === 'ok').length).toBeGreaterThanOrEqual(4);
    for (const [i, w] of want.entries()) {
      const g = got[i]!;
      expect(Math.abs(g.start - w.start)).toBeLessThanOrEqual(frame);
      expect(Math.abs(g.end - w.end)).toBeLessThanOrEqual(frame);
      expect(g.status).toBe(w.status);
      expect(g.text).toBe(w.text);
      expect(g.emotion).toBe(w.emotion);
      if (w.probabilities) expect(maxDiff(g.probabilities!, w.probabilities)).toBeLessThanOrEqual(TOL);
    }
    // the page shows them: one row per segment with its emotion, and analyze's timeline picture
    expect(await p.page<string[]>(`[...document.querySelectorAll('#segment-rows tr')].map((r) => r.dataset.emotion)`)).toEqual(
      want.map((w) => w.emotion ?? ''),
    );
    expect(await p.page<number>(`document.querySelectorAll('#timeline svg').length`)).toBe(1);
    if (screenshot) {
      // the README's docs/demo.png: the shipped model on the assembled recording
      const shot = await p.cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, p.session);
      writeFileSync(screenshot, Buffer.from(shot.data, 'base64'));
      console.log(`screenshot: ${screenshot}`);
    }
  }, 900_000);

  it("Chromium's fake microphone: the VAD cuts an utterance and its emotion is shown as it ends", async () => {
    // the capture device plays clips[0] between 1.5 s silences, in a loop: one utterance each time round
    await p.page(`document.getElementById('listen').click()`);
    await p.waitFor(
      `window.emofuseDemo.segmenting === 'microphone' && document.getElementById('listen').textContent === 'Stop listening'`,
      'the page to listen',
      30_000,
    );
    await p.waitFor(
      `window.emofuseDemo.segments.some((s) => s.status === 'ok')`,
      'an utterance from the microphone',
      180_000,
      `{ segments: window.emofuseDemo.segments, error: window.emofuseDemo.error, ` +
        `listen: document.getElementById('listen-state').textContent }`,
    );
    await p.page(`document.getElementById('listen').click()`);
    await p.waitFor(`window.emofuseDemo.segmenting === null`, 'listening to stop', 120_000);
    const st = await p.page<{ error: string | null; segments: DemoSegment[] }>('window.emofuseDemo');
    expect(st.error, st.error ?? '').toBeNull();
    const ok = st.segments.filter((s) => s.status === 'ok');
    const shown = st.segments.map((s) => `${s.start.toFixed(2)}-${s.end.toFixed(2)} s ${s.status} ${s.emotion} "${s.text}"`);
    console.log(`microphone: ${shown.join('; ')}`);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const s of ok) {
      expect(s.end - s.start).toBeGreaterThan(0.5);
      expect(s.end - s.start, 'one utterance of the clip, not several run together').toBeLessThan(6);
      expect(Object.values(s.probabilities!).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
      expect(s.text.length).toBeGreaterThan(0);
    }
    const rows = await p.page<string[]>(`[...document.querySelectorAll('#segment-rows tr')].map((r) => r.textContent)`);
    expect(rows.length).toBe(st.segments.length);
    expect(rows.find((r) => r.includes(ok[0]!.emotion!))).toBeTruthy();
  }, 400_000);
});
