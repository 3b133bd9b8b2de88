// Audio loading for the encoders: any WAV (8/16/24/32-bit PCM, 32/64-bit float, any channel count, any rate):
// 16-bit PCM and 32-bit float (nearly every corpus) read straight from the bytes, the rest through `wavefile`;
// other containers (MELD.Raw's .mp4) through the `ffmpeg` program; then a down-mix to mono and a resample to the
// encoders' 16 kHz with an anti-aliasing low-pass (./resample.ts: polyphase Kaiser-windowed sinc, the quality of
// the `wave-resampler` sinc + Butterworth it replaced at several times its speed).
// Every failure is an AudioError naming the file and what is wrong with it, so extraction can skip, count and
// list bad files instead of crashing.

import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import wavefilePkg from 'wavefile';
import { polyphaseWeights, resamplePolyphase } from './resample.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');

/** The sample rate every built-in and transformers.js audio encoder expects. */
export const TARGET_SAMPLE_RATE = 16_000;
/** A clip whose peak stays below this (about -80 dBFS) is reported as silent. */
export const SILENCE_PEAK = 1e-4;

export type AudioProblem = 'missing' | 'empty' | 'corrupt' | 'truncated' | 'silent' | 'unsupported' | 'no-decoder' | 'non-finite';

/** Samples beyond this magnitude (60 dB over full scale) are not audio: a float WAV holding garbage. */
export const MAX_SAMPLE_MAGNITUDE = 1000;

/** Sample rates a WAV header may declare (Hz): telephone to the highest studio rate. */
export const MIN_SAMPLE_RATE = 1000;
export const MAX_SAMPLE_RATE = 768_000;
/**
 * The most weights a resampling filter may have (8 MiB as float32, 24 MiB while designed): every common rate needs
 * far fewer (44.1 kHz: 32,000), an odd rate (a damaged header's 16,001 Hz: 1.2 million) its L = 16,000 phases.
 */
export const MAX_FILTER_WEIGHTS = 1 << 21;

/** WAV format tags decoded: PCM, IEEE float, and WAVE_FORMAT_EXTENSIBLE (its sub-format is checked by the decoders). */
const WAV_FORMATS = new Set([1, 3, 0xfffe]);

export class AudioError extends Error {
  constructor(
    readonly file: string,
    readonly problem: AudioProblem,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'AudioError';
  }
}

/** Decoded audio before down-mixing: one Float32Array per channel, samples in [-1, 1]. */
export interface DecodedAudio {
  sampleRate: number;
  channels: Float32Array[];
}

/** Reads the RIFF chunk list and checks the declared data size against the bytes present. */
function checkRiff(bytes: Uint8Array, file: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') {
    throw new AudioError(file, 'corrupt', 'not a WAV file (no RIFF/WAVE header)');
  }
  let at = 12;
  let sawFmt = false;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    if (id === 'fmt ') sawFmt = true;
    if (id === 'data') {
      if (!sawFmt) throw new AudioError(file, 'corrupt', "WAV 'data' chunk comes before its 'fmt ' chunk");
      const present = bytes.length - (at + 8);
      if (size === 0 || present === 0) throw new AudioError(file, 'empty', 'WAV file has no audio samples');
      // 0xFFFFFFFF / 0 are written by streaming encoders that never patch the size: trust the bytes present.
      if (size !== 0xffffffff && present < size) {
        throw new AudioError(file, 'truncated', `WAV file is truncated: the data chunk declares ${size} bytes, ${present} are present`);
      }
      return;
    }
    at += 8 + size + (size & 1);
  }
  throw new AudioError(file, sawFmt ? 'empty' : 'corrupt', sawFmt ? "WAV file has no 'data' chunk" : "WAV file has no 'fmt ' chunk");
}

/**
 * 16-bit PCM and 32-bit float WAV (plain or WAVE_FORMAT_EXTENSIBLE) straight from the bytes: the same numbers as
 * `wavefile` (s / 32768; floats as stored) at a fraction of its time. null for any other encoding.
 */
function decodeCommonWav(bytes: Uint8Array): DecodedAudio | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
  let fmt: { format: number; channels: number; rate: number; bits: number; align: number } | undefined;
  for (let at = 12; at + 8 <= bytes.length; ) {
    const size = view.getUint32(at + 4, true);
    if (tag(at) === 'fmt ' && size >= 16) {
      let format = view.getUint16(at + 8, true);
      if (format === 0xfffe && size >= 26) format = view.getUint16(at + 32, true); // the sub-format GUID's first 2 bytes
      fmt = {
        format,
        channels: view.getUint16(at + 10, true),
        rate: view.getUint32(at + 12, true),
        align: view.getUint16(at + 20, true),
        bits: view.getUint16(at + 22, true),
      };
    } else if (tag(at) === 'data' && fmt) {
      const { format, channels: C, rate, bits, align } = fmt;
      const pcm16 = format === 1 && bits === 16;
      if (!(pcm16 || (format === 3 && bits === 32)) || align !== (C * bits) / 8 || C < 1 || rate < 1000) return null;
      const frames = Math.floor(Math.min(size, bytes.length - at - 8) / align);
      const channels = Array.from({ length: C }, () => new Float32Array(frames));
      const data = at + 8;
      for (let c = 0; c < C; c++) {
        const out = channels[c]!;
        if (pcm16) for (let i = 0; i < frames; i++) out[i] = view.getInt16(data + (i * C + c) * 2, true) / 32768;
        else for (let i = 0; i < frames; i++) out[i] = view.getFloat32(data + (i * C + c) * 4, true);
      }
      return frames ? { sampleRate: rate, channels } : null;
    }
    at += 8 + size + (size & 1);
  }
  return null;
}

/** Decodes WAV bytes to float channels in [-1, 1]. */
export function decodeWav(bytes: Uint8Array, file = '<wav>'): DecodedAudio {
  checkRiff(bytes, file);
  return decodeCommonWav(bytes) ?? decodeWavGeneric(bytes, file);
}

/** decodeWav through `wavefile`: every encoding it knows (checkRiff first). */
export function decodeWavGeneric(bytes: Uint8Array, file = '<wav>'): DecodedAudio {
  const wav = new WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (err) {
    throw new AudioError(file, 'corrupt', `cannot decode WAV: ${(err as Error).message}`);
  }
  const fmt = wav.fmt as { numChannels: number; sampleRate: number; audioFormat: number };
  if (!WAV_FORMATS.has(fmt.audioFormat)) {
    throw new AudioError(
      file,
      'unsupported',
      `WAV format tag ${fmt.audioFormat} (0x${fmt.audioFormat.toString(16)}) is not PCM or float: convert it, e.g. 'ffmpeg -i ` +
        `in.wav -c:a pcm_s16le out.wav'`,
    );
  }
  const bitDepth = (wav as unknown as { bitDepth: string }).bitDepth;
  const numChannels = fmt.numChannels;
  const sampleRate = fmt.sampleRate;
  if (!(numChannels >= 1) || !(sampleRate >= 1000)) {
    throw new AudioError(file, 'corrupt', `implausible WAV header: ${numChannels} channels at ${sampleRate} Hz`);
  }
  // Integer PCM is scaled by 2^(bits-1) (8-bit is unsigned, centred on 128); float is already in [-1, 1].
  let scale: number;
  let offset = 0;
  switch (bitDepth) {
    case '8':
      scale = 128;
      offset = -128;
      break;
    case '16':
      scale = 32768;
      break;
    case '24':
      scale = 8388608;
      break;
    case '32':
      scale = 2147483648;
      break;
    case '32f':
    case '64':
      scale = 1;
      break;
    default:
      throw new AudioError(
        file,
        'unsupported',
        `WAV encoding '${bitDepth}' (format ${fmt.audioFormat}) is not supported: convert it to PCM, e.g. 'ffmpeg -i in.wav -c:a ` +
          `pcm_s16le out.wav'`,
      );
  }
  let raw: Float64Array | Float64Array[];
  try {
    raw = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
  } catch (err) {
    throw new AudioError(file, 'corrupt', `cannot read WAV samples: ${(err as Error).message}`);
  }
  const perChannel = numChannels === 1 ? [raw as Float64Array] : (raw as Float64Array[]);
  const channels = perChannel.map((c) => {
    const out = new Float32Array(c.length);
    for (let i = 0; i < c.length; i++) out[i] = (c[i]! + offset) / scale;
    return out;
  });
  if (channels.length === 0 || channels[0]!.length === 0) throw new AudioError(file, 'empty', 'WAV file has no audio samples');
  return { sampleRate, channels };
}

/** Averages the channels into one. */
export function downmix(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0]!;
  const n = Math.min(...channels.map((c) => c.length));
  const out = new Float32Array(n);
  for (const c of channels) for (let i = 0; i < n; i++) out[i]! += c[i]!;
  for (let i = 0; i < n; i++) out[i]! /= channels.length;
  return out;
}

/**
 * Resamples mono audio (./resample.ts): a low-pass at the lower Nyquist, so on downsampling content above the new
 * Nyquist is removed rather than aliased.
 */
export function resampleTo(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  return resamplePolyphase(samples, fromRate, toRate);
}

function peak(samples: Float32Array): number {
  let p = 0;
  for (let i = 0; i < samples.length; i++) {
    const a = Math.abs(samples[i]!);
    if (a > p) p = a;
  }
  return p;
}

let ffmpegFound: boolean | undefined;
function hasFfmpeg(): boolean {
  if (ffmpegFound === undefined) {
    const r = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    ffmpegFound = !r.error && r.status === 0;
  }
  return ffmpegFound;
}

/** Decodes any container ffmpeg knows straight to 16 kHz mono float (ffmpeg does the down-mix and resample). */
function decodeWithFfmpeg(file: string, rate: number, maxSeconds?: number): Float32Array {
  if (!hasFfmpeg()) {
    throw new AudioError(
      file,
      'no-decoder',
      "only WAV is decoded natively; other formats need the 'ffmpeg' program: install it (Debian/Ubuntu: apt-get install ffmpeg) " +
        'or convert to WAV',
    );
  }
  const limit = maxSeconds !== undefined ? ['-t', String(maxSeconds)] : [];
  // level+info: every stderr line tagged [info] / [warning] / [error], so the container's declared Duration and the
  // errors can be told apart
  const r = spawnSync(
    'ffmpeg',
    [
      '-nostdin',
      '-hide_banner',
      '-nostats',
      '-v',
      'level+info',
      '-i',
      file,
      ...limit,
      '-vn',
      '-ac',
      '1',
      '-ar',
      String(rate),
      '-f',
      'f32le',
      '-',
    ],
    { maxBuffer: 1 << 30 },
  );
  const log = String(r.stderr ?? '').split('\n');
  if (r.status !== 0) {
    const errors = log.filter((l) => /\[(error|fatal|panic)\]/.test(l));
    const msg = (errors.pop() ?? log.filter((l) => l.trim()).pop() ?? 'unknown error').replace(/^.*\[(error|fatal|panic)\]\s*/, '');
    throw new AudioError(file, 'corrupt', `ffmpeg cannot decode it: ${msg}`);
  }
  const buf = r.stdout as Buffer;
  const out = new Float32Array(buf.length >> 2);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  if (out.length === 0) throw new AudioError(file, 'empty', 'no audio stream or no samples');
  const declared = declaredSeconds(log);
  if (declared !== null) {
    const expected = Math.min(declared, maxSeconds ?? declared);
    const got = out.length / rate;
    if (got < expected - Math.max(0.5, 0.02 * expected))
      throw new AudioError(
        file,
        'truncated',
        `is truncated or damaged: it says it lasts ${declared.toFixed(2)} s but only ${got.toFixed(2)} s decode (copy it again; to ` +
          `keep what is left: ffmpeg -i in out.wav)`,
      );
  }
  return out;
}

/**
 * The input's Duration from ffmpeg's level+info log: what the container declares (an MP3's Xing frame count, FLAC's
 * STREAMINFO, an MP4's moov), which a file cut short no longer reaches. null when it declares none, or when the input
 * has a video stream (a container's duration is its longest stream's, and a video may outlast its sound).
 */
function declaredSeconds(log: readonly string[]): number | null {
  const input = log.slice(
    0,
    Math.max(
      0,
      log.findIndex((l) => /\] Stream mapping:|\] Output #0/.test(l)),
    ),
  );
  if (input.some((l) => /\] +Stream #\d+:\d+.*: Video: /.test(l) && !/\(attached pic\)/.test(l))) return null;
  const m = input.map((l) => /\] +Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)/.exec(l)).find((x) => x);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : null;
}

export interface LoadAudioOptions {
  /** Output rate (default 16 kHz). */
  sampleRate?: number;
  /** Reject clips whose peak is below SILENCE_PEAK (default true). */
  rejectSilent?: boolean;
  /**
   * Read at most this many seconds from the start (a WAV reads only those bytes from disk; ffmpeg stops there), so
   * an hour-long recording costs what its first minutes cost. Default: all of it.
   */
  maxSeconds?: number;
}

/** Loads a clip as mono float samples at `sampleRate`, or throws an AudioError naming the file and the problem. */
export function loadAudio(file: string, options: LoadAudioOptions = {}): Float32Array {
  const rate = options.sampleRate ?? TARGET_SAMPLE_RATE;
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new AudioError(file, 'missing', 'is a folder, not an audio file');
    size = st.size;
  } catch (err) {
    if (err instanceof AudioError) throw err;
    throw new AudioError(file, 'missing', 'audio file not found');
  }
  if (size === 0) throw new AudioError(file, 'empty', 'audio file is empty (0 bytes)');
  let bytes: Uint8Array;
  try {
    bytes =
      options.maxSeconds !== undefined
        ? (readWavPrefix(file, size, options.maxSeconds) ?? new Uint8Array(readFileSync(file)))
        : new Uint8Array(readFileSync(file));
  } catch (err) {
    throw new AudioError(file, 'missing', `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const isWav = bytes.length >= 4 && String.fromCharCode(...bytes.subarray(0, 4)) === 'RIFF';
  let mono: Float32Array;
  if (isWav || /\.wav$/i.test(file)) {
    const decoded = decodeWav(bytes, file);
    for (const ch of decoded.channels) checkFinite(ch, file);
    checkRate(decoded.sampleRate, rate, file);
    mono = resampleTo(downmix(decoded.channels), decoded.sampleRate, rate);
  } else {
    mono = decodeWithFfmpeg(file, rate, options.maxSeconds);
    checkFinite(mono, file);
  }
  if ((options.rejectSilent ?? true) && peak(mono) < SILENCE_PEAK) {
    throw new AudioError(file, 'silent', 'audio is silent (peak below -80 dBFS)');
  }
  return mono;
}

/**
 * A WAV's declared rate must lie in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] and resample to `to` within MAX_FILTER_WEIGHTS:
 * a damaged header's rate (4,294,967,295 Hz) would otherwise ask for a filter of gigabytes.
 */
function checkRate(from: number, to: number, file: string): void {
  const fix = `convert it, e.g. 'ffmpeg -i in.wav -ar 16000 out.wav'`;
  if (!(Number.isInteger(from) && from >= MIN_SAMPLE_RATE && from <= MAX_SAMPLE_RATE))
    throw new AudioError(file, 'unsupported', `WAV sample rate ${from} Hz is outside ${MIN_SAMPLE_RATE}..${MAX_SAMPLE_RATE} Hz: ${fix}`);
  if (polyphaseWeights(from, to) > MAX_FILTER_WEIGHTS)
    throw new AudioError(
      file,
      'unsupported',
      `WAV sample rate ${from} Hz is not a common rate and resampling it to ${to} Hz needs a filter of ` +
        `${polyphaseWeights(from, to)} weights (at most ${MAX_FILTER_WEIGHTS}): ${fix}`,
    );
}

/** Throws a 'non-finite' AudioError at the first NaN, infinite or absurdly large sample (never passed on silently). */
export function checkFinite(samples: Float32Array, file: string): void {
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    if (Number.isFinite(x) && Math.abs(x) <= MAX_SAMPLE_MAGNITUDE) continue;
    let bad = 0;
    for (let j = i; j < samples.length; j++) if (!(Math.abs(samples[j]!) <= MAX_SAMPLE_MAGNITUDE)) bad++;
    const what = Number.isNaN(x) ? 'NaN' : Number.isFinite(x) ? `${x} (far outside [-1, 1])` : String(x);
    throw new AudioError(
      file,
      'non-finite',
      `sample ${i} is ` +
        `${what}${
          bad === samples.length ? ': every sample is like that' : `; ${bad} of ${samples.length} samples are non-finite or out of range`
        }: the file is damaged or not audio`,
    );
  }
}

/**
 * The first `maxSeconds` of a WAV file: its header and that much of its data chunk, read from disk without the
 * rest, with the data size patched to what was kept. null when the file is not a WAV this can cut (the caller
 * then reads it all and the decoder reports what is wrong with it) or is short enough already.
 */
function readWavPrefix(file: string, size: number, maxSeconds: number): Uint8Array | null {
  const fd = openSync(file, 'r');
  try {
    const head = new Uint8Array(Math.min(size, 1 << 16));
    readSync(fd, head, 0, head.length, 0);
    const view = new DataView(head.buffer);
    const tag = (at: number) => String.fromCharCode(...head.subarray(at, at + 4));
    if (head.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') return null;
    let rate = 0;
    let align = 0;
    for (let at = 12; at + 8 <= head.length; ) {
      const id = tag(at);
      const n = view.getUint32(at + 4, true);
      if (id === 'fmt ' && at + 24 <= head.length) {
        rate = view.getUint32(at + 12, true);
        align = view.getUint16(at + 20, true);
      }
      if (id === 'data') {
        if (!(rate >= 1000) || !(align >= 1)) return null;
        const keep = Math.ceil(maxSeconds * rate) * align;
        const declared = n === 0xffffffff ? size - (at + 8) : n;
        if (keep >= declared || at + 8 + keep >= size) return null;
        const out = new Uint8Array(at + 8 + keep);
        readSync(fd, out, 0, out.length, 0);
        new DataView(out.buffer).setUint32(at + 4, keep, true);
        return out;
      }
      at += 8 + n + (n & 1);
    }
    return null;
  } finally {
    closeSync(fd);
  }
}
