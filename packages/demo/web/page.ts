// The demo page: a trained checkpoint (by default the shipped model, served by `emofuse demo`) classifies speech in the
// browser, with the same code as `emofuse predict` and `emofuse analyze`. Checkpoint loading, the audio decoding of
// WAV files, the text and audio encoders (the checkpoint's: all-MiniLM-L6-v2 through transformers.js and Whisper
// tiny.en's sliced encoder through onnxruntime-web for the shipped model, hash + logmel for small ones; their files
// fetched from the demo server's models folder), the VAD and segmenter of analyze (./segments.ts) and the fusion
// model are the model package's own modules; the fusion forward runs on our WGSL kernels through navigator.gpu, or,
// in a browser without WebGPU, on the float64 CPU references (and the page says so).
// One clip: every step is timed and the page shows what ran (adapter, backend, encoders with versions, transcript),
// with both modalities or one absent. A dropped recording or the microphone: speech segments as analyze cuts them,
// each transcribed and judged as it ends, on analyze's timeline.
// A --speaker-norm checkpoint: the page's session (since it loaded, or since "New speaker") is one speaker, as analyze
// takes a recording to be: every utterance classified with words and sound joins its running statistics and is
// standardized with them, the first with the checkpoint's pooled train statistics (fusion/speaker-sums.ts
// standardizeRunning, analyze's own code); each result says which.

import { Gpu } from '@emofuse/kernels';
import {
  checkpointSpeakerFallback,
  CpuBackend,
  loadCheckpointBytes,
  padBatch,
  SpeakerSums,
  standardizeRow,
  standardizeRunning,
  trainedWithSpeakerNorm,
  WgslBackend,
  type AudioEncoder,
  type Backend,
  type CheckpointMeta,
  type FeatureBatch,
  type FusionModel,
  type SpeakerFallback,
  type TextEncoder,
} from '@emofuse/model/browser';
// The encoders and WAV decoding read their files through node:fs (here web/node-shim.ts's in-memory files), so they
// are not part of @emofuse/model/browser yet: imported from the model package's sources.
import { AudioError, loadAudio } from '../../model/src/audio/decode.ts';
import { BERT_VOCAB_FILE } from '../../model/src/encoders/hash.ts';
import {
  createAudioEncoder,
  createTextEncoder,
  DEFAULT_WHISPER,
  type EncoderDevice,
  parseWhisperSpec,
} from '../../model/src/encoders/index.ts';
import { loadTransformers } from '../../model/src/encoders/transformers-env.ts';
import type { AnalyzedSegment } from '../../model/src/analyze/types.ts';
import { fmtTime, timelineSvg } from '../../model/src/analyze/report.ts';
import type { Span } from '../../model/src/analyze/vad.ts';
import { putFile } from './node-shim.ts';
import { MIN_SECONDS, SpeechCutter } from './segments.ts';

/** What the demo server tells the page (GET /api/info). */
interface ServerInfo {
  /** The server has the BERT vocabulary the hash encoder's WordPiece reads (as `emofuse predict` does), at /vocab.txt. */
  bertVocab: boolean;
  /**
   * The checkpoint the server offers (the --checkpoint given, or the shipped default model), served at /checkpoint;
   * for the shipped model, what it is and the licence its training data gives it.
   */
  checkpoint: { name: string; path: string; summary?: string; licence?: string } | null;
  /** Files under /assets the encoders may ask for (the BERT tokenizer, the AST filterbank settings). */
  assetFiles: string[];
  /** Speech recognition: the model id, and whether its files are in the server's models folder. */
  asr: { id: string; available: boolean; folder: string };
}

interface Loaded {
  name: string;
  model: FusionModel;
  meta: CheckpointMeta;
  textEncoder: TextEncoder;
  audioEncoder: AudioEncoder;
  /** A --speaker-norm checkpoint's lone-utterance statistics (fusion/input-norm.ts), read once at load; else null. */
  fallback: SpeakerFallback | null;
  /** The checkpoint was trained with --speaker-norm: the page keeps a speaker session (`session`). */
  speakerNorm: boolean;
}

/**
 * Which statistics standardized an utterance's inputs, for a --speaker-norm checkpoint: the pooled train statistics
 * ('train': the session's first utterance) or the session's running statistics over `utterances` utterances, this one
 * included ('session'; analyze's 'recording').
 */
export type PageStandardization = { by: 'train' } | { by: 'session'; utterances: number };

/** A speech segment of the page: analyze's, with the page's standardization. */
export type DemoSegment = Omit<AnalyzedSegment, 'standardization'> & { standardization?: PageStandardization };

interface Step {
  name: string;
  ms: number;
  detail: string;
}

/** The last result, for people and for the browser test (window.emofuseDemo). */
export interface DemoState {
  ready: boolean;
  busy: boolean;
  error: string | null;
  backend: string;
  webgpu: boolean;
  checkpoint: string | null;
  result: {
    clip: string;
    text: string;
    transcribed: boolean;
    modalities: 'both' | 'text' | 'audio';
    predicted: string;
    probabilities: Record<string, number>;
    steps: Step[];
    truncated: boolean;
    /** A --speaker-norm checkpoint: which statistics standardized the utterance; else null. */
    standardization: PageStandardization | null;
  } | null;
  /** Speech segments of the dropped file or the microphone, as `emofuse analyze` writes them to segments.jsonl. */
  segments: DemoSegment[];
  /** A --speaker-norm checkpoint: the utterances in the speaker session so far; null for any other checkpoint. */
  session: number | null;
  /** Cutting a file or listening: segments are still to come. */
  segmenting: 'file' | 'microphone' | null;
}

const state: DemoState = {
  ready: false,
  busy: false,
  error: null,
  backend: '',
  webgpu: false,
  checkpoint: null,
  result: null,
  segments: [],
  segmenting: null,
  session: null,
};
(globalThis as { emofuseDemo?: DemoState }).emofuseDemo = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let info: ServerInfo;
let backend: Backend;
let loaded: Loaded | null = null;
let clip: { name: string; bytes: Uint8Array; recorded: boolean } | null = null;
let asr: ((audio: Float32Array) => Promise<{ text: string }>) | null = null;
/** The speaker session of a --speaker-norm checkpoint: the raw token sums of its utterances so far; else null. */
let session: SpeakerSums | null = null;

// ------------------------------------------------------------------------------------------------ messages

function showError(message: string): void {
  state.error = message;
  const el = $('message');
  el.textContent = message;
  el.className = 'message error';
  el.hidden = false;
}

function showNote(message: string): void {
  const el = $('message');
  el.textContent = message;
  el.className = 'message note';
  el.hidden = false;
}

/** A note that stays until the page is reloaded (no WebGPU): shown again whenever an error is cleared. */
let standingNote = '';

function clearMessage(): void {
  state.error = null;
  if (standingNote) showNote(standingNote);
  else $('message').hidden = true;
}

function busy(on: boolean, what = ''): void {
  state.busy = on;
  $('status').textContent = on ? what : '';
  for (const id of ['classify', 'record', 'analyse', 'listen', 'new-speaker']) ($(id) as HTMLButtonElement).disabled = on;
}

async function timed<T>(steps: Step[], name: string, f: () => Promise<T> | T, detail: (r: T) => string): Promise<T> {
  const t0 = performance.now();
  const r = await f();
  steps.push({ name, ms: performance.now() - t0, detail: detail(r) });
  return r;
}

// ------------------------------------------------------------------------------------------------ start

async function start(): Promise<void> {
  info = (await (await fetch('/api/info')).json()) as ServerInfo;
  // The hash encoder's vocabulary, where the model package reads it (else it falls back to transformers.js'
  // tokenizer over the assets); asset files: transformers.js fetches those itself, the filterbank settings are read
  // synchronously.
  if (info.bertVocab) putFile(BERT_VOCAB_FILE, new Uint8Array(await (await fetch('/vocab.txt')).arrayBuffer()));
  for (const path of info.assetFiles) {
    if (path.endsWith('preprocessor_config.json')) putFile(path, new Uint8Array(await (await fetch(path)).arrayBuffer()));
    else putFile(path, null);
  }
  // transformers.js runs some feature extraction through onnxruntime-web: its wasm comes from the demo server.
  const { env } = await loadTransformers();
  const wasm = env.backends.onnx.wasm as { wasmPaths?: string } | undefined;
  if (wasm) wasm.wasmPaths = '/ort/';
  await openBackendForPage();
  $('asr-state').textContent = info.asr.available
    ? `${info.asr.id} (from ${info.asr.folder})`
    : `not available: no ${info.asr.id} in ${info.asr.folder}; type the words instead`;
  ($('use-asr') as HTMLInputElement).disabled = !info.asr.available;
  if (info.checkpoint) {
    const bytes = new Uint8Array(await (await fetch('/checkpoint')).arrayBuffer());
    await useCheckpoint(info.checkpoint.name, bytes, info.checkpoint);
  } else {
    showNote('No checkpoint on the server: choose a .safetensors file written by emofuse train (or run emofuse quickstart first).');
  }
  state.ready = true;
}

async function openBackendForPage(): Promise<void> {
  try {
    const gpu = await Gpu.create();
    backend = await WgslBackend.create(gpu);
    const a = gpu.adapter;
    state.webgpu = true;
    state.backend =
      `wgsl: our WGSL kernels through navigator.gpu on ` +
      `${[a.vendor, a.architecture, a.device || a.description].filter(Boolean).join(' / ')}${a.isSoftware ? ' (software adapter)' : ''}`;
  } catch (err) {
    backend = new CpuBackend('f32');
    state.webgpu = false;
    state.backend = 'cpu: the float64 CPU references (this browser has no WebGPU)';
    standingNote =
      `No WebGPU in this browser (${(err as Error).message}). The fusion forward runs on the CPU references ` +
      `instead: the same model, slower.`;
    showNote(standingNote);
  }
  $('backend').textContent = state.backend;
}

// ------------------------------------------------------------------------------------------------ checkpoint

/**
 * The files of a transformers.js encoder's model folder (bert:<id>, whisper[:<id>]) that the model package reads
 * itself (config, tokenizer, the ONNX file the version hashes and the Whisper encoder rewrites), fetched from the
 * server's models folder into the page's files; transformers.js fetches the rest. A file the server lacks stays
 * absent, so the encoder's own message (the folder searched, the conversion command) is shown.
 */
async function stageModelFiles(spec: string): Promise<void> {
  const [kind, ...rest] = spec.split(':');
  let id: string;
  let files: string[];
  if (kind === 'bert') {
    id = rest.join(':');
    files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'];
  } else if (kind === 'whisper' || kind?.startsWith('whisper@') || kind?.startsWith('whisper+')) {
    id = parseWhisperSpec(kind === 'whisper' ? rest.join(':') : spec.slice('whisper'.length)).model || DEFAULT_WHISPER;
    files = ['config.json', 'preprocessor_config.json', 'onnx/encoder_model.onnx'];
  } else return;
  if (!id || id.startsWith('/') || id.startsWith('.')) return; // a folder of the machine that trained it: not served
  await Promise.all(
    files.map(async (f) => {
      const path = `/models/${id}/${f}`;
      const res = await fetch(path);
      if (res.ok) putFile(path, new Uint8Array(await res.arrayBuffer()));
    }),
  );
}

async function useCheckpoint(name: string, bytes: Uint8Array, about: { summary?: string; licence?: string } = {}): Promise<void> {
  busy(true, `loading ${name}...`);
  try {
    let got: { model: FusionModel; meta: CheckpointMeta };
    try {
      got = loadCheckpointBytes(backend, bytes, name);
    } catch (err) {
      throw new Error(`${name} is not a checkpoint this page can use: ${(err as Error).message.replace(`${name}: `, '')}`);
    }
    const { model, meta } = got;
    if (meta.format !== 1) throw new Error(`${name}: checkpoint format ${String(meta.format)} is not one this emofuse reads (format 1)`);
    for (const enc of [meta.textEncoder, meta.audioEncoder]) {
      if (enc === 'synthetic' || enc === 'arrays') {
        throw new Error(
          `${name} was trained on ${enc} features, which no encoder can produce from words and sound; train on a feature cache ` +
            `from 'emofuse extract'`,
        );
      }
    }
    let textEncoder: TextEncoder;
    let audioEncoder: AudioEncoder;
    try {
      busy(true, `loading ${name}: fetching the encoders' files...`);
      await Promise.all([stageModelFiles(meta.textEncoder), stageModelFiles(meta.audioEncoder)]);
      busy(true, `loading ${name}: opening the encoders...`);
      // onnxruntime-web's CPU backend is 'wasm' (transformers.js refuses 'cpu' in a browser; onnxruntime-web takes both)
      const onCpu = { device: 'wasm' as EncoderDevice };
      textEncoder = await createTextEncoder(meta.textEncoder, onCpu);
      audioEncoder = await createAudioEncoder(meta.audioEncoder, onCpu);
    } catch (err) {
      throw new Error(
        `${name} needs the encoders ${meta.textEncoder} + ${meta.audioEncoder}, which cannot run in this page: ${(err as Error).message}`,
      );
    }
    const c = model.config;
    if (textEncoder.dim !== c.textDim || audioEncoder.dim !== c.audioDim) {
      throw new Error(
        `${name} expects ${c.textDim} x ${c.audioDim} features; encoders ${meta.textEncoder}, ${meta.audioEncoder} give ` +
          `${textEncoder.dim} x ${audioEncoder.dim}`,
      );
    }
    const speakerNorm = trainedWithSpeakerNorm(meta);
    loaded = { name, model, meta, textEncoder, audioEncoder, fallback: checkpointSpeakerFallback(meta, name), speakerNorm };
    newSession();
    state.checkpoint = name;
    $('checkpoint-name').textContent =
      `${name}: fusion ${c.fusion}, width ${c.width}, ${meta.classNames.length} classes (${meta.classNames.join(', ')}), step ${meta.step}`;
    $('encoders').textContent = `text ${textEncoder.id} (${textEncoder.version}); audio ${audioEncoder.id} (${audioEncoder.version})`;
    $('model-about').textContent = about.summary ?? '';
    $('model-about').hidden = !about.summary;
    $('model-licence').textContent = about.licence ? `licence: ${about.licence}` : '';
    $('model-licence').hidden = !about.licence;
    clearMessage();
  } catch (err) {
    showError((err as Error).message);
  } finally {
    busy(false);
  }
}

/** A new speaker session (page load, a checkpoint loaded, "New speaker"): empty for a --speaker-norm checkpoint, else none. */
function newSession(): void {
  const c = loaded?.model.config;
  session = c && loaded!.speakerNorm ? new SpeakerSums(c.textDim, c.audioDim) : null;
  $('session').hidden = !session;
  showSession();
}

function showSession(): void {
  state.session = session ? session.clips : null;
  const n = session?.clips ?? 0;
  $('session-state').textContent =
    n === 0
      ? 'no utterances yet: the first gets the train statistics'
      : `${n} utterance${n === 1 ? '' : 's'} so far; the next (words and sound) gets the statistics of ${n + 1}`;
}

function standardizationText(s: PageStandardization): string {
  return `standardization: ${s.by === 'train' ? 'train' : `session (${s.utterances} utterances)`}`;
}

// ------------------------------------------------------------------------------------------------ audio

function setClip(name: string, bytes: Uint8Array, recorded = false): void {
  clip = { name, bytes, recorded };
  $('clip-name').textContent = `${name} (${(bytes.length / 1024).toFixed(1)} KiB)`;
  clearMessage();
}

/** Mono 16 kHz float samples of the clip, through the same loadAudio as `emofuse predict` (WAV decoded in JS). */
async function decodeClip(
  c: { name: string; bytes: Uint8Array; recorded: boolean },
  rate: number,
): Promise<{ samples: Float32Array; how: string }> {
  const empty = c.recorded ? 'The recording is empty or too short to decode: record again (at least a second), or drop a file' : '';
  if (c.bytes.length === 0) throw new Error(empty || `${c.name} is empty (0 bytes): record again or choose another file`);
  const isWav = c.bytes.length >= 4 && String.fromCharCode(...c.bytes.subarray(0, 4)) === 'RIFF';
  let wav = c.bytes;
  let how = 'WAV, decoded by the model package (wavefile, resampled by wave-resampler)';
  if (!isWav) {
    // MP3, recordings (WebM/Opus) and anything else the browser knows: decoded and resampled to 16 kHz by Web Audio,
    // then handed to loadAudio as a float WAV (so the empty and silent checks are the same).
    let buf: AudioBuffer;
    try {
      buf = await new OfflineAudioContext({ numberOfChannels: 1, length: 1, sampleRate: rate }).decodeAudioData(c.bytes.slice().buffer);
    } catch {
      throw new Error(empty || `${c.name} is not audio this browser can decode (WAV, MP3, OGG, WebM...): choose an audio file`);
    }
    if (buf.length === 0) throw new Error(empty || `${c.name} holds no audio samples`);
    const mono = new Float32Array(buf.length);
    for (let ch = 0; ch < buf.numberOfChannels; ch++) {
      buf.getChannelData(ch).forEach((x, i) => {
        mono[i]! += x / buf.numberOfChannels;
      });
    }
    wav = floatWav(mono, rate);
    how = `decoded and resampled to ${rate} Hz by the browser (Web Audio)`;
  }
  const path = `/input/${c.name.replace(/[^\w.-]/g, '_')}${isWav ? '' : '.wav'}`;
  putFile(path, wav);
  try {
    return { samples: loadAudio(path, { sampleRate: rate }), how };
  } catch (err) {
    if (err instanceof AudioError) throw new Error(`${c.name}: ${err.message.replace(`${path}: `, '')}`);
    throw err;
  }
}

/** A 32-bit float mono WAV. */
function floatWav(samples: Float32Array, rate: number): Uint8Array {
  const out = new Uint8Array(44 + samples.length * 4);
  const v = new DataView(out.buffer);
  const tag = (at: number, s: string) => {
    for (const [i, ch] of [...s].entries()) v.setUint8(at + i, ch.charCodeAt(0));
  };
  tag(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 4, true);
  tag(8, 'WAVE');
  tag(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 3, true); // IEEE float
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 32, true);
  tag(36, 'data');
  v.setUint32(40, samples.length * 4, true);
  new Float32Array(out.buffer, 44).set(samples);
  return out;
}

let recorder: MediaRecorder | null = null;

async function toggleRecording(): Promise<void> {
  const btn = $('record') as HTMLButtonElement;
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    showError(`No microphone: ${(err as Error).message}. Drop a WAV or MP3 file instead.`);
    return;
  }
  const chunks: Blob[] = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.onstop = async () => {
    for (const t of stream.getTracks()) t.stop();
    const blob = new Blob(chunks, { type: chunks[0]?.type ?? 'audio/webm' });
    if (blob.size === 0) showError('The recording is empty: nothing was captured. Record again (allow the microphone), or drop a file.');
    else setClip('recording.webm', new Uint8Array(await blob.arrayBuffer()), true);
    recorder = null;
    btn.textContent = 'Record'; // last: the recording is the clip (or the message is shown) once the button says Record
  };
  recorder.start();
  btn.textContent = 'Stop';
  clearMessage();
}

// ------------------------------------------------------------------------------------------------ classify

/** Which inputs the model is given: both, or one modality absent (zero tokens, masked, as in mixed-corpus training). */
type Modalities = 'both' | 'text' | 'audio';

async function classify(): Promise<void> {
  if (!loaded) return showError('Load a checkpoint first (.safetensors from emofuse train).');
  const modalities = ($('modalities') as HTMLSelectElement).value as Modalities;
  if (!clip && modalities !== 'text') return showError('Record a clip or drop a WAV/MP3 file first.');
  const steps: Step[] = [];
  busy(true, 'classifying...');
  clearMessage();
  try {
    const rate = loaded.audioEncoder.sampleRate;
    const samples =
      modalities === 'text'
        ? null
        : (
            await timed(
              steps,
              'decode audio',
              () => decodeClip(clip!, rate),
              (r) => `${(r.samples.length / rate).toFixed(2)} s at ${rate} Hz; ${r.how}`,
            )
          ).samples;
    let text: string | null = modalities === 'audio' ? null : ($('text') as HTMLInputElement).value;
    let transcribed = false;
    if (text !== null && !text.trim()) {
      if (!($('use-asr') as HTMLInputElement).checked || !samples)
        throw new Error('No words: type what was said, or tick "transcribe with Whisper" (needs the model in the models folder).');
      text = await timed(
        steps,
        'transcribe (Whisper)',
        () => transcribe(samples),
        (t) => `${info.asr.id}: "${t}"`,
      );
      transcribed = true;
    }
    const r = await classifyUtterance(text, samples, steps);
    state.result = { clip: modalities === 'text' ? '' : clip!.name, text: text ?? '', transcribed, modalities, ...r, steps };
    render();
  } catch (err) {
    showError((err as Error).message);
  } finally {
    busy(false);
  }
}

/**
 * One utterance through the loaded model, as `Predictor.predict` does it: text encoder, audio encoder, padBatch to
 * the model's lengths, the fusion forward, softmax. A modality given as null is absent: zero tokens of it.
 */
async function classifyUtterance(
  text: string | null,
  samples: Float32Array | null,
  steps: Step[],
): Promise<{ predicted: string; probabilities: Record<string, number>; truncated: boolean; standardization: PageStandardization | null }> {
  const { model, meta, textEncoder, audioEncoder, fallback } = loaded!;
  const c = model.config;
  const none = { tokens: new Float32Array(0), mask: new Float32Array(0), T: 0, lengths: new Int32Array(1) };
  const t =
    text === null
      ? none
      : await timed(
          steps,
          'text encoder',
          () => textEncoder.encode([text]),
          (r) => `${textEncoder.id}: ${r.lengths[0]} tokens x ${r.C}`,
        );
  const a =
    samples === null
      ? none
      : await timed(
          steps,
          'audio encoder',
          () => audioEncoder.encode([samples]),
          (r) => `${audioEncoder.id}: ${r.lengths[0]} tokens x ${r.C}`,
        );
  const fb: FeatureBatch = {
    ids: ['utterance'],
    labels: new Int32Array(1).fill(-1),
    text: t.tokens,
    textMask: t.mask,
    Tt: t.T, // [1, Tt, Ct], [1, Tt]
    audio: a.tokens,
    audioMask: a.mask,
    Ta: a.T, // [1, Ta, Ca], [1, Ta]
  };
  // A --speaker-norm checkpoint: the utterance joins the session's running statistics and is standardized with them,
  // or, the session's first, with the pooled train statistics, as analyze does a recording's segments. With one
  // modality absent it is a lone clip (the pooled train statistics) and stays out of the session, whose statistics are
  // of utterances with both (analyze's segments all have both).
  let standardization: PageStandardization | null = null;
  if (session && text !== null && samples !== null) {
    const by = standardizeRunning(session, fb, 0, fallback);
    standardization = by === 'train' ? { by: 'train' } : { by: 'session', utterances: session.clips };
    showSession();
  } else if (session) {
    if (fallback) standardizeRow(fb, 0, fallback);
    standardization = { by: 'train' };
  }
  const logits = await timed(
    steps,
    'fusion forward',
    () => model.predict(padBatch(fb, 1, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim)),
    () => `${c.fusion} on ${backend.name}`,
  ); // [1, K_cls]
  const row = Array.from(logits.subarray(0, c.numClasses));
  const m = Math.max(...row);
  const e = row.map((x) => Math.exp(x - m));
  const s = e.reduce((x, y) => x + y, 0);
  return {
    predicted: meta.classNames[row.indexOf(m)]!,
    probabilities: Object.fromEntries(meta.classNames.map((name, k) => [name, e[k]! / s])),
    truncated: t.lengths[0]! > c.maxTextLen || a.lengths[0]! > c.maxAudioLen,
    standardization,
  };
}

async function transcribe(samples: Float32Array): Promise<string> {
  if (!asr) {
    const { pipeline, env } = await loadTransformers();
    env.localModelPath = '/models/';
    env.allowRemoteModels = false;
    asr = (await pipeline('automatic-speech-recognition', info.asr.id, { dtype: 'fp32', device: 'wasm' })) as unknown as typeof asr;
  }
  return (await asr!(samples)).text.trim();
}

// ------------------------------------------------------------------------------------------------ segments

/**
 * One span as analyze.ts judges it: shorter than MIN_SECONDS marked, not guessed; else Whisper's words (the same
 * pipeline as `emofuse analyze`) and both modalities through the model.
 */
async function judge(cutter: SpeechCutter, span: Span, index: number): Promise<DemoSegment> {
  const [start, end] = [span.start / 16_000, span.end / 16_000];
  const seg: DemoSegment = { index, start, end, status: 'ok', text: '', textFrom: 'asr', emotion: null, probabilities: null };
  if (end - start < MIN_SECONDS) return { ...seg, status: 'too-short', textFrom: 'none' };
  const clip = cutter.slice(span);
  try {
    seg.text = await transcribe(clip);
    const r = await classifyUtterance(seg.text, clip, []);
    seg.emotion = r.predicted;
    seg.probabilities = r.probabilities;
    if (r.truncated) seg.truncated = true;
    if (r.standardization) seg.standardization = r.standardization;
  } catch (err) {
    seg.status = 'failed';
    seg.error = (err as Error).message;
  }
  return seg;
}

function segmentsReady(): string | null {
  if (!loaded) return 'Load a checkpoint first (.safetensors from emofuse train).';
  if (!info.asr.available) return `Segments need Whisper for their words: no ${info.asr.id} in ${info.asr.folder}.`;
  if (loaded.audioEncoder.sampleRate !== 16_000)
    return `The VAD reads 16 kHz; this checkpoint's audio encoder reads ${loaded.audioEncoder.sampleRate} Hz.`;
  return null;
}

/** The whole clip cut into speech segments as `emofuse analyze` cuts it, each judged as it ends. */
async function analyseFile(): Promise<void> {
  const why = segmentsReady() ?? (clip ? null : 'Drop a recording (WAV, MP3...) first.');
  if (why) return showError(why);
  clearMessage();
  busy(true, `cutting ${clip!.name} into speech segments...`);
  state.segments = [];
  state.segmenting = 'file';
  try {
    const { samples } = await decodeClip(clip!, 16_000);
    const cutter = await SpeechCutter.open();
    const seconds = samples.length / 16_000;
    const step = 16_000 * 5; // 5 s at a time, so the timeline grows while the rest is cut
    for (let at = 0; at < samples.length; at += step) {
      for (const span of await cutter.push(samples.subarray(at, at + step))) await addSegment(cutter, span, seconds);
      $('status').textContent = `cutting ${clip!.name}: ${fmtTime(Math.min(seconds, (at + step) / 16_000))} of ${fmtTime(seconds)}`;
    }
    for (const span of cutter.finish()) await addSegment(cutter, span, seconds);
  } catch (err) {
    showError((err as Error).message);
  } finally {
    state.segmenting = null;
    busy(false);
  }
}

async function addSegment(cutter: SpeechCutter, span: Span, seconds: number): Promise<void> {
  state.segments.push(await judge(cutter, span, state.segments.length));
  renderSegments(seconds);
}

let listening: { stop: () => Promise<void> } | null = null;

/** The microphone at 16 kHz through the VAD: each utterance is judged as it ends and joins the running timeline. */
async function toggleListening(): Promise<void> {
  const btn = $('listen') as HTMLButtonElement;
  if (listening) return void (await listening.stop());
  const why = segmentsReady();
  if (why) return showError(why);
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false } });
  } catch (err) {
    return showError(`No microphone: ${(err as Error).message}. Drop a recording instead.`);
  }
  clearMessage();
  state.segments = [];
  state.segmenting = 'microphone';
  const cutter = await SpeechCutter.open();
  const ctx = new AudioContext({ sampleRate: 16_000 }); // the browser resamples the microphone to 16 kHz
  const source = ctx.createMediaStreamSource(stream);
  // An AudioWorklet copies the sound off the audio thread: the pieces queue up while the page is busy judging an
  // utterance, none is lost (a ScriptProcessor on the main thread drops and repeats them then).
  const tapCode =
    `registerProcessor('emofuse-tap', class extends AudioWorkletProcessor { process(inputs) { ` +
    `const x = inputs[0] && inputs[0][0]; if (x) this.port.postMessage(x.slice()); return true; } });`;
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([tapCode], { type: 'text/javascript' })));
  const tap = new AudioWorkletNode(ctx, 'emofuse-tap');
  let queue = Promise.resolve(); // the VAD and the judging, in order, one piece of sound at a time
  let piece: Float32Array[] = [];
  tap.port.onmessage = (e: MessageEvent<Float32Array>) => {
    piece.push(e.data);
    if (piece.length < 32) return; // 128 samples a message: handed on 4096 at a time
    const x = new Float32Array(piece.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of piece) {
      x.set(p, at);
      at += p.length;
    }
    piece = [];
    queue = queue.then(async () => {
      for (const span of await cutter.push(x)) await addSegment(cutter, span, cutter.seconds);
      $('listen-state').textContent = `listening: ${fmtTime(cutter.seconds)}, ${state.segments.length} utterance(s)`;
    });
  };
  source.connect(tap);
  tap.connect(ctx.destination);
  btn.textContent = 'Stop listening';
  listening = {
    stop: async () => {
      listening = null;
      tap.disconnect();
      source.disconnect();
      for (const t of stream.getTracks()) t.stop();
      await ctx.close();
      await queue;
      for (const span of cutter.finish()) await addSegment(cutter, span, cutter.seconds);
      state.segmenting = null;
      btn.textContent = 'Listen';
      $('listen-state').textContent = `${fmtTime(cutter.seconds)} heard, ${state.segments.length} utterance(s)`;
    },
  };
}

/** The segments as analyze's timeline (report.ts's SVG) and a table: time, emotion, words. */
function renderSegments(seconds: number): void {
  $('segments-section').hidden = false;
  const names = loaded!.meta.classNames;
  const plain = state.segments.map(({ standardization: _, ...seg }): AnalyzedSegment => seg);
  $('timeline').innerHTML = timelineSvg(plain, names, seconds, clip && state.segmenting === 'file' ? clip.name : 'microphone');
  const rows = $('segment-rows');
  rows.replaceChildren();
  for (const seg of state.segments) {
    const tr = document.createElement('tr');
    tr.dataset.emotion = seg.emotion ?? '';
    const cells = [
      `${fmtTime(seg.start)} - ${fmtTime(seg.end)}`,
      seg.status === 'ok' ? `${seg.emotion} (${(100 * seg.probabilities![seg.emotion!]!).toFixed(0)}%)` : seg.status,
      seg.error ?? seg.text,
      ...(seg.standardization ? [standardizationText(seg.standardization).replace('standardization: ', '')] : []),
    ];
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    rows.append(tr);
  }
}

function render(): void {
  const r = state.result!;
  $('result').hidden = false;
  $('predicted').textContent = r.predicted;
  $('transcript').textContent =
    r.modalities === 'audio'
      ? 'the sound only (no words given to the model)'
      : `${r.transcribed ? 'heard (Whisper)' : 'typed'}: "${r.text}"`;
  const bars = $('bars');
  bars.replaceChildren();
  for (const [name, p] of Object.entries(r.probabilities)) {
    const row = document.createElement('div');
    row.className = `bar${name === r.predicted ? ' top' : ''}`;
    row.dataset.class = name;
    row.dataset.p = String(p);
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = name;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.width = `${(100 * p).toFixed(2)}%`;
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(label, track, value);
    bars.append(row);
  }
  const steps = $('steps');
  steps.replaceChildren();
  for (const s of r.steps) {
    const tr = document.createElement('tr');
    for (const [cls, text] of [
      ['step', s.name],
      ['ms', `${s.ms.toFixed(0)} ms`],
      ['detail', s.detail],
    ] as const) {
      const td = document.createElement('td');
      td.className = cls;
      td.textContent = text;
      tr.append(td);
    }
    steps.append(tr);
  }
  $('truncated').hidden = !r.truncated;
  $('standardization').textContent = r.standardization ? standardizationText(r.standardization) : '';
  $('standardization').hidden = !r.standardization;
}

// ------------------------------------------------------------------------------------------------ wiring

function wire(): void {
  const fileInput = $('clip-file') as HTMLInputElement;
  fileInput.addEventListener('change', async () => {
    const f = fileInput.files?.[0];
    if (f) setClip(f.name, new Uint8Array(await f.arrayBuffer()));
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) setClip(f.name, new Uint8Array(await f.arrayBuffer()));
  });
  const ckpt = $('checkpoint-file') as HTMLInputElement;
  ckpt.addEventListener('change', async () => {
    const f = ckpt.files?.[0];
    if (f) await useCheckpoint(f.name, new Uint8Array(await f.arrayBuffer()));
  });
  $('record').addEventListener('click', () => void toggleRecording());
  $('classify').addEventListener('click', () => void classify());
  $('analyse').addEventListener('click', () => void analyseFile());
  $('listen').addEventListener('click', () => void toggleListening());
  $('new-speaker').addEventListener('click', () => newSession());
}

wire();
start().catch((err: Error) => {
  showError(`The page could not start: ${err.message}`);
  state.ready = true;
});
