// `emofuse demo` in a real browser: a small checkpoint trained here on hash + logmel features of generated clips,
// the page served by the command, headless Chromium (WebGPU on SwiftShader, as webgpu-browser.test.ts) driven
// over the DevTools protocol (./chromium.ts: a pipe, no extra package): a WAV file is set on the page's file input
// instead of the microphone, the words typed, Classify clicked. The probabilities the page shows must equal
// `emofuse predict --json` for the same clip and text within TOL; a screenshot is written and checked to show the
// bars; bad input (not audio, an empty file, a checkpoint of another format) must show a message.
// Skipped, with the reason, where no Chromium is installed (CI installs it and sets EMOFUSE_REQUIRE_BROWSER=1).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { DEFAULT_ASR } from '../../packages/model/src/encoders/asr.ts';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';
import { bin, buildCli, emofuse, root } from '../helpers/cli.ts';
import { CHROMIUM, CHROMIUM_FLAGS, Cdp, fakeMicrophoneFlags, startDemo } from './chromium.ts';
import { resign } from '../helpers/checkpoint.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const skipReason = CHROMIUM ? '' : 'no Chromium (apt-get install chromium)';
if (!CHROMIUM && process.env.EMOFUSE_REQUIRE_BROWSER === '1') throw new Error('EMOFUSE_REQUIRE_BROWSER=1 but no Chromium found');

const whisperDir = join(modelSettings.modelsDir, DEFAULT_ASR);
const whisperSkip = existsSync(join(whisperDir, 'onnx', 'decoder_model_merged.onnx'))
  ? ''
  : `no converted Whisper tiny.en at ${whisperDir} (python3 scripts/convert_whisper.py)`;
if (CHROMIUM && whisperSkip && process.env.EMOFUSE_REQUIRE_WHISPER === '1') throw new Error(`EMOFUSE_REQUIRE_WHISPER=1 but ${whisperSkip}`);
/** Speech for Whisper: a real MELD clip when the assets have it, else the generated tone. */
const speechClip = join(modelSettings.assetsDir, 'meld-audio', 'dia0_utt0.wav');

/**
 * |p_page - p_predict| per class. Both run the same encoders on the same decoded samples and the same model on
 * our WGSL kernels, on two adapters (SwiftShader in Chromium, llvmpipe in Node): float32 sums in another order.
 */
const TOL = 1e-4;

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-demo-'));
/** Where the screenshot goes: $EMOFUSE_DEMO_SCREENSHOT (the README's docs/demo.png is made so), else the temp folder. */
const screenshot = process.env.EMOFUSE_DEMO_SCREENSHOT ?? join(tmp, 'demo.png');
/**
 * $EMOFUSE_DEMO_CHECKPOINT, $EMOFUSE_DEMO_CLIP (and $EMOFUSE_DEMO_TEXT) replace the checkpoint trained here and the
 * generated clip: the README's screenshot shows the quickstart's checkpoint on one of its utterances.
 */
const given =
  process.env.EMOFUSE_DEMO_CHECKPOINT && process.env.EMOFUSE_DEMO_CLIP
    ? { checkpoint: process.env.EMOFUSE_DEMO_CHECKPOINT, clip: process.env.EMOFUSE_DEMO_CLIP }
    : null;

let server: ChildProcess | undefined;
let browser: ChildProcess | undefined;
let cdp: Cdp;
let session = '';
let url = '';
const CLIP_TEXT = process.env.EMOFUSE_DEMO_TEXT ?? 'What a wonderful surprise, I love it.';
/** `emofuse predict --json` for the clip and CLIP_TEXT. */
let want: { probabilities: Record<string, number>; predicted: string };
let checkpoint = '';
let clip = '';

// ------------------------------------------------------------------------------------------------ DevTools protocol

/** Evaluates an expression in the page (awaiting a promise) and returns its JSON value. */
async function page<T = unknown>(expression: string): Promise<T> {
  const r = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, session);
  if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return r.result.value as T;
}

async function waitFor(expression: string, what: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await page<boolean>(expression))) {
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}; page state: ${JSON.stringify(await page('window.emofuseDemo'))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sets a file on one of the page's file inputs, as a user choosing it would (fires 'change'). */
async function chooseFile(inputId: string, file: string): Promise<void> {
  const r = await cdp.send('Runtime.evaluate', { expression: `document.getElementById('${inputId}')` }, session);
  await cdp.send('DOM.setFileInputFiles', { files: [file], objectId: r.result.objectId }, session);
  if (inputId === 'clip-file') {
    const name = file.slice(file.lastIndexOf('/') + 1);
    await waitFor(
      `document.getElementById('clip-name').textContent.startsWith(${JSON.stringify(name)})`,
      `the page to read ${name}`,
      20_000,
    );
  }
}

/** The message the page shows (error or note), or ''. */
const message = () =>
  page<string>(`(() => { const m = document.getElementById('message'); return m.hidden ? '' : m.className + ': ' + m.textContent; })()`);

// ------------------------------------------------------------------------------------------------ fixtures

/** A 16-bit mono WAV at 22.05 kHz (so the page resamples, as predict does): a tone with vibrato and a little noise. */
function writeClip(file: string, seconds: number, hz: number, seed: number): void {
  const rate = 22050;
  const n = Math.round(seconds * rate);
  const s = new Int16Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const t = i / rate;
    const env = Math.min(1, t * 20, (seconds - t) * 20);
    const v = 0.5 * env * Math.sin(2 * Math.PI * hz * t + 3 * Math.sin(2 * Math.PI * 5 * t)) + 0.02 * (x / 2 ** 32 - 0.5);
    s[i] = Math.round(v * 32767);
  }
  const w = new WaveFile();
  w.fromScratch(1, rate, '16', s);
  writeFileSync(file, w.toBuffer());
}

/** RGBA pixels of an 8-bit non-interlaced PNG (what Chromium's screenshots are). */
function decodePng(png: Buffer): { width: number; height: number; rgba: Uint8Array } {
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  let at = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString();
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)];
      expect(data[8]).toBe(8); // bit depth
      colorType = data[9]!;
      expect(data[12]).toBe(0); // not interlaced
    }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const cur = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= bpp ? px[y * stride + i - bpp]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? px[(y - 1) * stride + i - bpp]! : 0;
      const pa = Math.abs(b - c);
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + b - 2 * c);
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      px[y * stride + i] = (cur + pred) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    rgba.set(px.subarray(p * bpp, p * bpp + 3), p * 4);
    rgba[p * 4 + 3] = bpp === 4 ? px[p * bpp + 3]! : 255;
  }
  return { width, height, rgba };
}

/** 16 generated clips: two pitch classes, two sentences; a checkpoint trained on their hash + logmel features. */
async function trainCheckpoint(): Promise<string> {
  const data = join(tmp, 'data');
  mkdirSync(data);
  const rows = ['id,text,audio,label,split'];
  for (let i = 0; i < 16; i++) {
    const high = i % 2 === 0;
    writeClip(join(data, `c${i}.wav`), 0.8 + 0.05 * i, high ? 520 + 10 * i : 150 + 5 * i, i + 1);
    rows.push(
      `c${i},${
        i % 4 < 2 ? 'I am so happy today' : 'this is really terrible'
      },c${i}.wav,${high ? 'high' : 'low'},${i < 12 ? 'train' : 'dev'}`,
    );
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
  const tr = await emofuse([
    'train',
    '--features',
    join(tmp, 'cache'),
    '--width',
    '16',
    '--heads',
    '2',
    '--epochs',
    '2',
    '--batch-size',
    '4',
    '--lr',
    '3e-3',
    '--out',
    join(tmp, 'run'),
    '--no-progress',
  ]);
  expect(tr.code, tr.stderr).toBe(0);
  return join(tmp, 'run', 'best.safetensors');
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  await buildCli();
  await run(process.execPath, [`${root}packages/demo/build.mjs`]);
  if (given) ({ checkpoint, clip } = given);
  else {
    checkpoint = await trainCheckpoint();
    clip = join(tmp, 'clip.wav');
    writeClip(clip, 1.3, 480, 99);
  }
  const p = await emofuse(['predict', '--checkpoint', checkpoint, '--audio', clip, '--text', CLIP_TEXT, '--json']);
  expect(p.code, p.stderr).toBe(0);
  want = JSON.parse(p.stdout);

  ({ server, url } = await startDemo(bin, ['--checkpoint', checkpoint]));
  browser = spawn(
    CHROMIUM,
    [
      ...CHROMIUM_FLAGS,
      '--window-size=900,1000',
      `--user-data-dir=${join(tmp, 'profile')}`,
      '--remote-debugging-pipe',
      'about:blank',
      // The "microphone" is the clip: getUserMedia gets it, without a permission prompt.
      ...fakeMicrophoneFlags(clip),
    ],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] },
  );
  cdp = new Cdp(browser);
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  ({ sessionId: session } = await cdp.send('Target.attachToTarget', { targetId, flatten: true }));
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: 900, height: 1000, deviceScaleFactor: 1, mobile: false }, session);
  await cdp.send('Page.navigate', { url }, session);
  await waitFor(`!!window.emofuseDemo && window.emofuseDemo.ready`, 'the page to load the checkpoint');
}, 300_000);

afterAll(async () => {
  for (const p of [browser, server]) {
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
  }
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

describe.skipIf(!CHROMIUM)(`emofuse demo in headless Chromium${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('classifies a WAV file on WebGPU and shows the probabilities emofuse predict gives, as bars (screenshot)', async () => {
    const st = await page<{ webgpu: boolean; backend: string; checkpoint: string; error: string | null }>('window.emofuseDemo');
    expect(st.error, st.error ?? '').toBeNull();
    expect(st.checkpoint).toBe(checkpoint.slice(checkpoint.lastIndexOf('/') + 1));
    console.log(`page backend: ${st.backend}`);
    expect(st.webgpu, 'the page found no WebGPU adapter in Chromium').toBe(true);

    await chooseFile('clip-file', clip);
    await page(
      `(() => { document.getElementById('text').value = ${JSON.stringify(CLIP_TEXT)}; document.getElementById('classify').click(); })()`,
    );
    await waitFor(`!window.emofuseDemo.busy && (!!window.emofuseDemo.result || !!window.emofuseDemo.error)`, 'the classification');
    expect(await message()).toBe('');
    // What the page shows: one bar per class, each with its probability.
    const shown = await page<{ cls: string; p: number; text: string; width: string }[]>(
      `[...document.querySelectorAll('#bars .bar')].map((b) => ({ cls: b.dataset.class, p: Number(b.dataset.p), text: ` +
        `b.querySelector('.value').textContent, width: b.querySelector('.fill').style.width }))`,
    );
    const steps = await page<{ name: string; ms: number; detail: string }[]>('window.emofuseDemo.result.steps');
    console.log(steps.map((s) => `${s.name} ${s.ms.toFixed(0)} ms (${s.detail})`).join('\n'));
    expect(steps.map((s) => s.name)).toEqual(['decode audio', 'text encoder', 'audio encoder', 'fusion forward']);
    expect(steps.at(-1)!.detail).toMatch(/on wgsl$/);

    expect(shown.map((b) => b.cls)).toEqual(Object.keys(want.probabilities));
    const diff = Math.max(...shown.map((b) => Math.abs(b.p - want.probabilities[b.cls]!)));
    console.log(
      `page vs emofuse predict: max |probability difference| ${diff.toExponential(2)} (tolerance ${TOL}); page ` +
        `${JSON.stringify(Object.fromEntries(shown.map((b) => [b.cls, b.p])))}`,
    );
    expect(diff).toBeLessThanOrEqual(TOL);
    for (const b of shown) expect(b.text).toBe(`${(100 * b.p).toFixed(1)}%`);
    expect(await page('document.getElementById("predicted").textContent')).toBe(want.predicted);

    // The screenshot shows the bars: the top class's bar in its colour (#2f6fd6), as wide as its probability.
    const shot = await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, session);
    const png = Buffer.from(shot.data, 'base64');
    writeFileSync(screenshot, png);
    console.log(`screenshot: ${screenshot}`);
    const img = decodePng(png);
    const box = await page<{ x: number; y: number; w: number; h: number }>(
      `(() => { const r = document.querySelector('#bars .bar.top .track').getBoundingClientRect(); return { x: r.x, y: r.y + ` +
        `window.scrollY, w: r.width, h: r.height }; })()`,
    );
    const y = Math.round(box.y + box.h / 2);
    let blue = 0;
    for (let x = Math.round(box.x); x < box.x + box.w; x++) {
      const i = (y * img.width + x) * 4;
      if (Math.abs(img.rgba[i]! - 0x2f) < 12 && Math.abs(img.rgba[i + 1]! - 0x6f) < 12 && Math.abs(img.rgba[i + 2]! - 0xd6) < 12) blue++;
    }
    const pTop = want.probabilities[want.predicted]!;
    expect(Math.abs(blue / box.w - pTop), `top bar ${blue} of ${box.w} px blue for p = ${pTop}`).toBeLessThan(0.05);
  });

  it('shows a message, never a blank page, for a file that is not audio, an empty file, and a checkpoint of another format', async () => {
    const notAudio = join(tmp, 'notes.txt');
    writeFileSync(notAudio, 'these are words, not sound\n');
    const empty = join(tmp, 'empty.wav');
    writeFileSync(empty, '');
    const headerOnly = join(tmp, 'silence.wav');
    const w = new WaveFile();
    w.fromScratch(1, 16000, '16', new Int16Array(0));
    writeFileSync(headerOnly, w.toBuffer());
    const cases: [string, RegExp][] = [
      [notAudio, /notes\.txt is not audio this browser can decode/],
      [empty, /empty\.wav is empty \(0 bytes\)/],
      [headerOnly, /silence\.wav: WAV file has no audio samples/],
    ];
    for (const [file, expected] of cases) {
      await chooseFile('clip-file', file);
      await page(`document.getElementById('classify').click()`);
      await waitFor(`!window.emofuseDemo.busy && !!window.emofuseDemo.error`, `a message for ${file}`, 30_000);
      const m = await message();
      expect(m).toMatch(/^message error: /);
      expect(m).toMatch(expected);
      expect(await page<number>('document.querySelector("main").getBoundingClientRect().height')).toBeGreaterThan(200);
    }
    const junk = join(tmp, 'junk.safetensors');
    writeFileSync(junk, 'not a checkpoint at all');
    await chooseFile('checkpoint-file', junk);
    await waitFor(
      `!window.emofuseDemo.busy && !!window.emofuseDemo.error && window.emofuseDemo.error.includes('junk.safetensors')`,
      'a message for the junk checkpoint',
    );
    expect(await message()).toMatch(/junk\.safetensors is not a checkpoint this page can use/);
    // A real safetensors file whose emofuse metadata is of another format.
    const enc = (header: object) => {
      const h = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h, Buffer.alloc(4)]);
    };
    const other = join(tmp, 'other.safetensors');
    writeFileSync(
      other,
      enc({
        'param.x': { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        __metadata__: { emofuse: JSON.stringify({ format: 2, config: {} }) },
      }),
    );
    await chooseFile('checkpoint-file', other);
    await waitFor(
      `!window.emofuseDemo.busy && !!window.emofuseDemo.error && window.emofuseDemo.error.includes('other.safetensors')`,
      'a message for the other format',
    );
    expect(await message()).toMatch(/other\.safetensors/);
    // A real checkpoint whose encoders the page cannot run (a transformers.js BERT that is not in the models folder).
    const raw = readFileSync(checkpoint);
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    header.__metadata__.emofuse = JSON.stringify({ ...JSON.parse(header.__metadata__.emofuse), textEncoder: 'bert:Xenova/not-here' });
    const h = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    const bert = join(tmp, 'bert.safetensors');
    writeFileSync(bert, resign(Buffer.concat([len, h, raw.subarray(8 + n)]))); // as a checkpoint trained so would be
    await chooseFile('checkpoint-file', bert);
    await waitFor(
      `!window.emofuseDemo.busy && !!window.emofuseDemo.error && window.emofuseDemo.error.includes('bert.safetensors')`,
      'a message for encoders the page cannot run',
    );
    const m = await message();
    console.log(`checkpoint with a BERT text encoder: ${m}`);
    expect(m).toMatch(/bert\.safetensors needs the encoders bert:Xenova\/not-here \+ logmel, which cannot run in this page/);
    expect(await page<number>('document.querySelector("main").getBoundingClientRect().height')).toBeGreaterThan(200);
  });
  it('records from the microphone (the clip, through the fake capture device of Chromium) and classifies the recording', async () => {
    // The recording is Opus-compressed by MediaRecorder and decoded by Web Audio: its probabilities are not
    // predict's for the WAV, so this checks the path (decode, steps, bars), not the numbers.
    const record = (wait: number) =>
      page(`(async () => {
        const b = document.getElementById('record');
        b.click();
        const t0 = Date.now();
        while (b.textContent !== 'Stop' && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, ${wait}));
        b.click();
        while (b.textContent !== 'Record' && Date.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 20));
      })()`);
    await record(1500);
    await waitFor(`document.getElementById('clip-name').textContent.startsWith('recording.webm')`, 'the recording', 20_000);
    await page(`document.getElementById('text').value = ${JSON.stringify(CLIP_TEXT)}; document.getElementById('classify').click()`);
    await waitFor(
      `!window.emofuseDemo.busy && (window.emofuseDemo.result?.clip === 'recording.webm' || !!window.emofuseDemo.error)`,
      'the classification of the recording',
    );
    expect(await message()).toBe('');
    const r = await page<{ steps: { name: string; detail: string }[]; probabilities: Record<string, number> }>('window.emofuseDemo.result');
    expect(r.steps[0]!.detail).toMatch(/Web Audio/);
    expect(Number(/^([\d.]+) s/.exec(r.steps[0]!.detail)![1])).toBeGreaterThan(0.8);
    expect(Object.keys(r.probabilities)).toEqual(Object.keys(want.probabilities));
    expect(Object.values(r.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(await page<number>('document.querySelectorAll("#bars .bar").length')).toBe(Object.keys(want.probabilities).length);
  });

  it('an empty recording (stopped at once) shows a message', async () => {
    await page(`(async () => {
      const b = document.getElementById('record');
      b.click();
      const t0 = Date.now();
      while (b.textContent !== 'Stop' && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 5));
      b.click();
    })()`);
    await waitFor(`document.getElementById('record').textContent === 'Record'`, 'the recorder to stop', 20_000);
    await page(`document.getElementById('classify').click()`);
    await waitFor(
      `!window.emofuseDemo.busy && (!!window.emofuseDemo.error || window.emofuseDemo.result?.clip === 'recording.webm')`,
      'a message for the empty recording',
      30_000,
    );
    expect(await message()).toMatch(/^message error: The recording is empty/);
  });

  it.skipIf(!!whisperSkip)(
    `transcribes with Whisper in the page when no words are typed, as emofuse predict does without ` +
      `--text${whisperSkip ? ` (skipped: ${whisperSkip})` : ''}`,
    async () => {
      const speech = existsSync(speechClip) ? speechClip : clip;
      await chooseFile('clip-file', speech);
      expect(await page<boolean>(`!document.getElementById('use-asr').disabled`)).toBe(true);
      await page(
        `document.getElementById('text').value = ''; document.getElementById('use-asr').checked = true; ` +
          `document.getElementById('classify').click()`,
      );
      await waitFor(
        `!window.emofuseDemo.busy && (window.emofuseDemo.result?.transcribed || !!window.emofuseDemo.error)`,
        'the transcription and classification',
        180_000,
      );
      expect(await message()).toBe('');
      const r = await page<{ text: string; steps: { name: string; ms: number }[]; probabilities: Record<string, number> }>(
        'window.emofuseDemo.result',
      );
      const p = await emofuse(['predict', '--checkpoint', checkpoint, '--audio', speech, '--json']);
      expect(p.code, p.stderr).toBe(0);
      const heard = JSON.parse(p.stdout) as { text: string; transcribed: boolean; probabilities: Record<string, number> };
      console.log(
        `Whisper in the page (${r.steps.find((s) => s.name.startsWith('transcribe'))!.ms.toFixed(0)} ms): "${r.text}"; emofuse ` +
          `predict: "${heard.text}"`,
      );
      expect(heard.transcribed).toBe(true);
      expect(r.text).toBe(heard.text);
      expect(await page<string>(`document.getElementById('transcript').textContent`)).toBe(`heard (Whisper): "${heard.text}"`);
      const diff = Math.max(...Object.entries(heard.probabilities).map(([k, q]) => Math.abs(q - r.probabilities[k]!)));
      expect(diff).toBeLessThanOrEqual(TOL);
    },
    300_000,
  );

  it('without WebGPU the page says so and runs the same model on the CPU references, with the same probabilities', async () => {
    await cdp.send('Page.enable', {}, session);
    const { identifier } = await cdp.send(
      'Page.addScriptToEvaluateOnNewDocument',
      { source: "Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });" },
      session,
    );
    try {
      await cdp.send('Page.navigate', { url }, session);
      await waitFor(`!!window.emofuseDemo && window.emofuseDemo.ready && !window.emofuseDemo.webgpu`, 'the page without WebGPU');
      expect(await message()).toMatch(/^message note: No WebGPU in this browser \(This browser has no WebGPU/);
      expect(await page<string>('document.getElementById("backend").textContent')).toMatch(/^cpu: the float64 CPU references/);
      await chooseFile('clip-file', clip);
      await page(`document.getElementById('text').value = ${JSON.stringify(CLIP_TEXT)}; document.getElementById('classify').click()`);
      await waitFor(
        `!window.emofuseDemo.busy && (!!window.emofuseDemo.result || !!window.emofuseDemo.error)`,
        'the classification on the CPU references',
      );
      expect(await message()).toMatch(/^message note: No WebGPU/);
      const r = await page<{ steps: { detail: string }[]; probabilities: Record<string, number> }>('window.emofuseDemo.result');
      expect(r.steps.at(-1)!.detail).toMatch(/on cpu$/);
      const diff = Math.max(...Object.entries(want.probabilities).map(([k, p]) => Math.abs(p - r.probabilities[k]!)));
      console.log(`page on the CPU references vs emofuse predict (wgsl): max |probability difference| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(TOL);
    } finally {
      await cdp.send('Page.removeScriptToEvaluateOnNewDocument', { identifier }, session);
    }
  });
});
