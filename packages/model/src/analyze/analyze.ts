// `emofuse analyze`: a recording of any length in, who felt what when out. The file streams through
//   ffmpeg (16 kHz mono f32, ./decode-stream.ts) -> Silero VAD frames -> Segmenter spans (./vad.ts)
//   -> each span cut from a rolling buffer and classified by the same Predictor as `emofuse predict`
//      (the cut written as a float32 WAV that predict reads back bit for bit, so a segment's emotion is predict's on that clip)
//   -> one line appended to segments.jsonl (fsync'd) and state.json replaced (temp + rename) per segment
// then segments.csv, timeline.svg/.png and summary.md from segments.jsonl.
//
// Memory bound: the rolling buffer holds at most maxSegment + minSilence + pad + 1 s of audio behind the newest frame
// (32.1 s at the defaults: 2 MiB of f32, twice that while compacting), plus ffmpeg's pipe buffer, the segments'
// records and the models; it does not grow with the length of the recording.
//
// Resume: a rerun with the same file (size, mtime), checkpoint and settings re-decodes and re-runs the VAD from
// the start (deterministic: the same spans) and classifies only the segments after the last one in segments.jsonl.

import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SILENCE_PEAK } from '../audio/decode.ts';
import { writeFileAtomic } from '../io.ts';
import { svgToPng } from '../metrics/confusion-plot.ts';
import { SpeakerSums, type Predictor } from '../predict.ts';
import { createTranscriber, DEFAULT_ASR, type Transcriber } from '../encoders/asr.ts';
import { decodeStream, DECODE_RATE, probeMedia } from './decode-stream.ts';
import { AnalyzeError } from './errors.ts';
import type { AnalyzedSegment } from './types.ts';
import { fmtTime, segmentsCsv, summaryMarkdown, timelineSvg } from './report.ts';
import { readSubtitles, wordsBetween, type Cue } from './subtitles.ts';
import { SileroVad, Segmenter, VAD_DEFAULTS, VAD_FRAME, type Span, type VadSettings } from './vad.ts';

/**
 * Segments shorter than this are marked 'too-short', not classified: under half a second there is barely a word,
 * and the encoders see a handful of frames (logmel: 3 patches; whisper-tiny: 25 pooled frames).
 */
export const ANALYZE_MIN_SECONDS = 0.5;

export type { AnalyzedSegment } from './types.ts';

export interface AnalyzeSettings extends VadSettings {
  /** Subtitle file whose cues give the words (else Whisper, the predictor's --asr, transcribes each segment). */
  textFrom?: string;
}

export interface AnalyzeProgress {
  /** Seconds of audio decoded and run through the VAD. */
  seconds: number;
  /** Length from the container, when it says. */
  duration: number | null;
  /** Segments finished (this run and earlier ones). */
  segments: number;
  resumedFrom: number;
}

export interface AnalyzeOptions {
  /** The classifier, opened by the caller (`Predictor.open`), shared by every file of a folder. */
  predictor: Predictor;
  /** Shown in summary.md and checked on resume. */
  checkpoint: string;
  /** The Whisper model the predictor transcribes with (its `asr` option): recorded in state.json and summary.md. */
  asr?: string;
  settings?: Partial<AnalyzeSettings>;
  onSegment?: (s: AnalyzedSegment) => void;
  onProgress?: (p: AnalyzeProgress) => void;
  onWarning?: (message: string) => void;
  /** A VAD to reuse (a folder shares one); opened and disposed here when absent. */
  vad?: SileroVad;
  /** The speech recognizer to reuse (a folder shares one); created from `asr` when first needed, and disposed here, when absent. */
  transcriber?: Transcriber;
  /** Aborted: stop after the segment in hand (the report then says `stopped`; the same call resumes). */
  signal?: AbortSignal;
}

export interface AnalyzeReport {
  file: string;
  out: string;
  seconds: number;
  segments: AnalyzedSegment[];
  classNames: readonly string[];
  /** Segments read back from an earlier run instead of classified. */
  resumed: number;
  /** `signal` stopped it before the end of the file: segments.jsonl and state.json hold what was done, no other file was written. */
  stopped: boolean;
  /**
   * Wall time, seconds: decoding (waiting on ffmpeg), VAD, speech recognition, classification (text + audio encoders + fusion), writing.
   */
  timings: { decode: number; vad: number; asr: number; classify: number; write: number; total: number };
  files: { jsonl: string; csv: string; svg: string; png: string; summary: string };
}

interface AnalyzeState {
  format: 1;
  file: string;
  size: number;
  mtimeMs: number;
  checkpoint: string;
  asr: string;
  settings: AnalyzeSettings;
  /** Segments in segments.jsonl. */
  done: number;
  /** Decoding reached the end of the file and the reports were written. */
  complete: boolean;
  /** A --speaker-norm checkpoint: the running sums of the recording's classified segments (resume continues them). */
  recording?: ReturnType<SpeakerSums['toJSON']>;
}

let fullGc: (() => void) | undefined;
/**
 * V8's full collection, after each transcribed segment. Whisper's decoding leaves about 20 MB of dead output tensors per
 * segment (the merged decoder hands back every layer's keys and values, the encoder's included, at each token) in
 * ArrayBuffers that V8 frees only when it collects. On an assembled 3.3-minute recording with the shipped model the
 * ArrayBuffers held a median 45 MB (at most 78) between collections of V8's own choosing and 23 MB (at most 39) with this,
 * and the peak RSS over its 61 segments was 867 MiB without it, 829 MiB with. Reached without --expose-gc (the flag can be
 * set at run time).
 */
function collectGarbage(): void {
  if (!fullGc) {
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as () => void;
  }
  fullGc();
}

/** Decoded audio is handed to the VAD in pieces of this many samples (0.25 s). */
const PIECE = 4096;

/** A float32 mono WAV of a segment (what a test writes to run `predict` on a cut; analyze hands predict the samples). */
export function writeWavF32(path: string, samples: Float32Array, rate = DECODE_RATE): void {
  const h = Buffer.alloc(44);
  const bytes = samples.length * 4;
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + bytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(3, 20); // IEEE float
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 4, 28);
  h.writeUInt16LE(4, 32);
  h.writeUInt16LE(32, 34);
  h.write('data', 36);
  h.writeUInt32LE(bytes, 40);
  writeFileSync(path, Buffer.concat([h, Buffer.from(samples.buffer, samples.byteOffset, bytes)]));
}

/** Audio kept behind the newest sample, [base, base + length): appended at the end, dropped from the front. */
class RollingAudio {
  private data: Float32Array;
  private used = 0;
  base = 0; // absolute index of data[0]
  constructor(private readonly keep: number) {
    this.data = new Float32Array(2 * keep + 2 * VAD_FRAME);
  }
  get end(): number {
    return this.base + this.used;
  }
  append(x: Float32Array): void {
    let at = 0;
    while (at < x.length) {
      if (this.used === this.data.length) this.compact();
      const n = Math.min(x.length - at, this.data.length - this.used);
      this.data.set(x.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
    }
  }
  /** Drops what lies more than `keep` behind the end. */
  private compact(): void {
    const drop = Math.max(0, this.used - this.keep);
    this.data.copyWithin(0, drop, this.used);
    this.used -= drop;
    this.base += drop;
  }
  /** A copy of [a, b); throws if part of it is gone (a bug: the bound was computed wrong). */
  slice(a: number, b: number): Float32Array {
    if (a < this.base || b > this.end)
      throw new Error(`analyze: samples [${a}, ${b}) are not in the rolling buffer [${this.base}, ${this.end})`);
    return this.data.slice(a - this.base, b - this.base);
  }
  /** The frame [a, a + n) without copying. */
  view(a: number, n: number): Float32Array {
    return this.data.subarray(a - this.base, a - this.base + n);
  }
}

function readDone(jsonl: string): AnalyzedSegment[] {
  if (!existsSync(jsonl)) return [];
  const raw = readFileSync(jsonl, 'utf8');
  const whole = raw.lastIndexOf('\n') + 1;
  if (whole < raw.length) truncateSync(jsonl, Buffer.byteLength(raw.slice(0, whole))); // a line cut by a kill
  return raw
    .slice(0, whole)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AnalyzedSegment);
}

const sameSettings = (a: AnalyzeSettings, b: AnalyzeSettings) => JSON.stringify(a) === JSON.stringify(b);

/** Analyses one recording into `out` (created), resuming a run that was stopped there. */
export async function analyzeRecording(file: string, out: string, options: AnalyzeOptions): Promise<AnalyzeReport> {
  const t0 = performance.now();
  const path = resolve(file);
  const info = probeMedia(path);
  const st = statSync(path);
  const settings: AnalyzeSettings = { ...VAD_DEFAULTS, ...options.settings };
  for (const k of ['threshold', 'minSpeech', 'minSilence', 'maxSegment', 'pad'] as const) {
    if (!Number.isFinite(settings[k]) || settings[k] < 0)
      throw new AnalyzeError('', `setting ${k} must be a number >= 0, got ${settings[k]}`);
  }
  if (settings.threshold <= 0 || settings.threshold >= 1)
    throw new AnalyzeError('', `the VAD threshold must lie in (0, 1), got ${settings.threshold}`);
  if (settings.maxSegment < 1) throw new AnalyzeError('', `--max-segment must be at least 1 s, got ${settings.maxSegment}`);
  const cues: Cue[] | null = settings.textFrom ? readSubtitles(resolve(settings.textFrom)) : null;
  if (settings.textFrom) settings.textFrom = resolve(settings.textFrom);
  const predictor = options.predictor;
  const asr = cues ? '' : (options.asr ?? '');

  mkdirSync(out, { recursive: true });
  const files = {
    jsonl: join(out, 'segments.jsonl'),
    csv: join(out, 'segments.csv'),
    svg: join(out, 'timeline.svg'),
    png: join(out, 'timeline.png'),
    summary: join(out, 'summary.md'),
  };
  const stateFile = join(out, 'state.json');
  const state: AnalyzeState = {
    format: 1,
    file: path,
    size: st.size,
    mtimeMs: st.mtimeMs,
    checkpoint: resolve(options.checkpoint),
    asr,
    settings,
    done: 0,
    complete: false,
  };
  let done: AnalyzedSegment[] = [];
  let old: AnalyzeState | null = null;
  if (existsSync(stateFile)) {
    old = JSON.parse(readFileSync(stateFile, 'utf8')) as AnalyzeState;
    const same =
      old.file === state.file &&
      old.size === state.size &&
      old.mtimeMs === state.mtimeMs &&
      old.checkpoint === state.checkpoint &&
      old.asr === state.asr &&
      sameSettings(old.settings, settings);
    if (!same) {
      throw new AnalyzeError(
        out,
        `holds a report of another run (${old.file}, other checkpoint or settings): give another --out, or delete ${out} to start over`,
      );
    }
    done = readDone(files.jsonl);
  } else if (existsSync(files.jsonl)) {
    throw new AnalyzeError(out, 'holds segments.jsonl without state.json: give another --out, or delete it to start over');
  }
  const resumed = done.length;
  // A --speaker-norm checkpoint: one speaker per recording assumed; each segment is standardized with the statistics of
  // the recording's segments so far, itself included (a running estimate: the segments stream), the first with the
  // checkpoint's pooled train statistics (predict.ts SpeakerSums, SPEAKER_MIN_CLIPS; fusion/input-norm.ts SpeakerFallback).
  const c = predictor.model.config;
  const recording = predictor.speakerNorm
    ? old?.recording
      ? SpeakerSums.fromJSON(old.recording)
      : new SpeakerSums(c.textDim, c.audioDim)
    : undefined;
  if (recording && !resumed)
    options.onWarning?.(
      `${path}: the checkpoint was trained with --speaker-norm; analyze assumes one speaker in the recording and standardizes ` +
        `each segment with the statistics of the recording's segments so far (the first: the ` +
        `${predictor.speakerFallback ? 'pooled train statistics' : 'train statistics only'}; each ` +
        `segment's 'standardization' says which)`,
    );
  const stateOf = (n: number) => ({ ...state, done: n, ...(recording ? { recording: recording.toJSON() } : {}) });
  writeFileAtomic(stateFile, JSON.stringify(stateOf(done.length), null, 1));

  const vad = options.vad ?? (await SileroVad.open());
  vad.reset();
  const timings = { decode: 0, vad: 0, asr: 0, classify: 0, write: 0, total: 0 };
  let transcriber = options.transcriber ?? null;
  const segments: AnalyzedSegment[] = [...done];
  const rate = DECODE_RATE;
  const segmenter = new Segmenter(settings);
  const keep = Math.ceil((settings.maxSegment + settings.minSilence + 2 * settings.pad + 1) * rate) + PIECE + 2 * VAD_FRAME;
  const audio = new RollingAudio(keep);
  const pending: Span[] = [];
  let vadAt = 0; // next frame start (absolute sample)
  let peak = 0;
  let index = 0;
  let lastReport = performance.now();
  const progress = () =>
    options.onProgress?.({ seconds: vadAt / rate, duration: info.duration, segments: segments.length, resumedFrom: resumed });

  const finish = async (span: Span) => {
    const i = index++;
    if (i < done.length) {
      const old = done[i]!;
      if (Math.abs(old.start - span.start / rate) > 1e-6) {
        throw new AnalyzeError(
          out,
          `segment ${i} of the earlier run started at ${old.start} s, now at ${span.start / rate} s: the file or VAD changed; ` +
            `delete ${out} to start over`,
        );
      }
      return;
    }
    const start = span.start / rate;
    const end = span.end / rate;
    const seg: AnalyzedSegment = {
      index: i,
      start,
      end,
      status: 'ok',
      text: '',
      textFrom: cues ? 'subtitles' : 'asr',
      emotion: null,
      probabilities: null,
    };
    const tc = performance.now();
    const asrBefore = timings.asr;
    if (cues) seg.text = wordsBetween(cues, start, end);
    if (end - start < ANALYZE_MIN_SECONDS) {
      seg.status = 'too-short';
      if (!cues) seg.textFrom = 'none';
    } else {
      const clip = audio.slice(span.start, span.end);
      if (!cues) {
        // transcribed here, by the transformers.js pipeline predict uses (createTranscriber), on the same samples, so
        // the words are predict's; done outside the Predictor only to time speech recognition apart
        const ta = performance.now();
        transcriber ??= await createTranscriber(options.asr ?? DEFAULT_ASR).catch((err: Error) => {
          throw new AnalyzeError(
            '',
            `no speech recognition model to transcribe the segments: ${err.message}\nGive the words with --text-from FILE.srt, ` +
              `or make a Whisper model available (--asr <id or folder>).`,
          );
        });
        seg.text = (await transcriber.transcribe([clip]))[0]!;
        timings.asr += (performance.now() - ta) / 1000;
      }
      let failure: Error | null = null;
      const [p] = await predictor.predict(
        [{ id: `${basename(path)}@${fmtTime(start)}`, audio: clip, sampleRate: rate, text: seg.text }],
        undefined,
        (_u, err) => (failure = err),
        { recording },
      );
      if (p) {
        seg.emotion = p.predicted;
        seg.probabilities = p.probabilities;
        if (p.truncated) seg.truncated = true;
        if (p.standardization) seg.standardization = p.standardization as 'recording' | 'train'; // given a recording: never 'speaker'
      } else {
        seg.status = 'failed';
        seg.error = (failure as Error | null)?.message ?? 'not classified';
      }
    }
    timings.classify += (performance.now() - tc) / 1000 - (seg.textFrom === 'asr' ? timings.asr - asrBefore : 0);
    const tw = performance.now();
    const fd = openSync(files.jsonl, 'a');
    try {
      appendFileSync(fd, JSON.stringify(seg) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    segments.push(seg);
    writeFileAtomic(stateFile, JSON.stringify(stateOf(segments.length), null, 1));
    timings.write += (performance.now() - tw) / 1000;
    options.onSegment?.(seg);
    progress();
    if (seg.textFrom === 'asr') collectGarbage();
  };

  const decoded = decodeStream(path, (w) => options.onWarning?.(`${path}: ffmpeg: ${w}`));
  let stopped = false;
  try {
    for (;;) {
      if (options.signal?.aborted) {
        stopped = true;
        await decoded.return(undefined);
        break;
      }
      const td = performance.now();
      const next = await decoded.next();
      timings.decode += (performance.now() - td) / 1000;
      if (next.done) break;
      // in pieces of at most PIECE samples, so the buffer never runs more than a piece ahead of the VAD
      for (let at = 0; at < next.value.length; at += PIECE) {
        const x = next.value.subarray(at, at + PIECE);
        for (let i = 0; i < x.length; i++) {
          const a = Math.abs(x[i]!);
          if (a > peak) peak = a;
        }
        audio.append(x);
        const tv = performance.now();
        while (vadAt + VAD_FRAME <= audio.end) {
          const p = await vad.next(audio.view(vadAt, VAD_FRAME));
          vadAt += VAD_FRAME;
          pending.push(...segmenter.push(p));
        }
        timings.vad += (performance.now() - tv) / 1000;
        while (pending.length && pending[0]!.end <= audio.end) await finish(pending.shift()!);
      }
      if (performance.now() - lastReport > 1000) {
        lastReport = performance.now();
        progress();
      }
    }
    if (!stopped) {
      pending.push(...segmenter.finish());
      for (const s of pending) await finish({ start: s.start, end: Math.min(s.end, audio.end) });
    }
  } finally {
    if (!options.vad) await vad.dispose();
    if (!options.transcriber) await transcriber?.dispose();
  }
  const seconds = audio.end / rate;
  const classNames = predictor.classNames;
  if (stopped) {
    timings.total = (performance.now() - t0) / 1000;
    return { file: path, out, seconds, segments, classNames, resumed, stopped, timings, files };
  }
  if (peak < SILENCE_PEAK) {
    rmSync(stateFile, { force: true });
    rmSync(files.jsonl, { force: true });
    throw new AnalyzeError(path, `is silent (peak ${peak.toExponential(1)} over ${seconds.toFixed(1)} s): nothing to analyse`);
  }
  if (seconds === 0) throw new AnalyzeError(path, 'decodes to no audio samples');
  const notes: string[] = [];
  if (!segments.length) notes.push('no speech found');
  const truncated = info.duration !== null && seconds < info.duration - Math.max(0.5, 0.02 * info.duration);
  if (truncated)
    notes.push(`the file says it lasts ${fmtTime(info.duration!)} but only ${fmtTime(seconds)} could be decoded: truncated or damaged`);

  const tw = performance.now();
  writeFileAtomic(files.csv, segmentsCsv(segments, classNames));
  const svg = timelineSvg(segments, classNames, seconds, `${basename(path)}: emotion over time`);
  writeFileAtomic(files.svg, svg);
  writeFileAtomic(files.png, await svgToPng(svg, 1));
  writeFileAtomic(
    files.summary,
    summaryMarkdown({
      file: basename(path),
      seconds,
      segments,
      classNames,
      checkpoint: options.checkpoint,
      textSource: cues ? `subtitles ${settings.textFrom}` : `speech recognition (${asr || 'Whisper'})`,
      notes,
    }),
  );
  writeFileAtomic(stateFile, JSON.stringify({ ...stateOf(segments.length), complete: true }, null, 1));
  timings.write += (performance.now() - tw) / 1000;
  timings.total = (performance.now() - t0) / 1000;
  if (truncated) {
    throw new AnalyzeError(
      path,
      `is truncated or damaged: it says it lasts ${info.duration!.toFixed(1)} s but only ${seconds.toFixed(1)} s decode; the ` +
        `report in ${out} covers that part`,
    );
  }
  return { file: path, out, seconds, segments, classNames, resumed, stopped, timings, files };
}

/** Extensions taken from a folder (anything ffmpeg decodes is accepted as a single file). */
export const RECORDING_EXTENSIONS = ['.wav', '.mp3', '.m4a', '.aac', '.flac', '.ogg', '.opus', '.webm', '.mp4', '.mkv', '.mov', '.wma'];

export interface FolderReport {
  reports: AnalyzeReport[];
  failed: { file: string; message: string }[];
  index: string;
}

/**
 * Every recording in `dir` (by extension, not recursive): one report folder each under `out/<file name>/`, then
 * `out/index.md` (a row per file: length, segments, the most frequent emotion, a link) and `out/index.csv`.
 * A file that cannot be analysed is listed as failed and the rest continue.
 */
export async function analyzeFolder(
  dir: string,
  out: string,
  options: AnalyzeOptions & { onFile?: (file: string, i: number, n: number) => void },
): Promise<FolderReport> {
  const root = resolve(dir);
  const names = readdirSync(root)
    .filter((f) => RECORDING_EXTENSIONS.includes(extname(f).toLowerCase()) && statSync(join(root, f)).isFile())
    .sort();
  if (!names.length) throw new AnalyzeError(root, `no recordings here (looked for ${RECORDING_EXTENSIONS.join(' ')})`);
  const vad = options.vad ?? (await SileroVad.open());
  const reports: AnalyzeReport[] = [];
  const failed: FolderReport['failed'] = [];
  try {
    for (const [i, name] of names.entries()) {
      options.onFile?.(name, i, names.length);
      if (options.signal?.aborted) break;
      try {
        reports.push(await analyzeRecording(join(root, name), join(out, name), { ...options, vad }));
      } catch (err) {
        if (!(err instanceof AnalyzeError)) throw err;
        failed.push({ file: name, message: err.message });
      }
    }
  } finally {
    if (!options.vad) await vad.dispose();
  }
  const rows = reports.map((r) => {
    const time = new Map<string, number>();
    for (const s of r.segments) if (s.emotion) time.set(s.emotion, (time.get(s.emotion) ?? 0) + s.end - s.start);
    const top = [...time].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '-';
    return { name: basename(r.file), seconds: r.seconds, segments: r.segments.length, top };
  });
  const md =
    [
      `# Emotions in ${root}`,
      '',
      '| recording | length | segments | most speech time | report |',
      '|---|---:|---:|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${fmtTime(r.seconds)} | ${r.segments} | ${r.top} | [summary](${encodeURI(r.name)}/summary.md) · ` +
          `[timeline](${encodeURI(r.name)}/timeline.png) |`,
      ),
      ...failed.map((f) => `| ${f.file} | - | - | failed: ${f.message.replace(/\|/g, '\\|')} | |`),
    ].join('\n') + '\n';
  const index = join(out, 'index.md');
  writeFileAtomic(index, md);
  writeFileAtomic(
    join(out, 'index.csv'),
    [
      'file,seconds,segments,top_emotion,status',
      ...rows.map((r) => `${JSON.stringify(r.name)},${r.seconds.toFixed(3)},${r.segments},${r.top},ok`),
      ...failed.map((f) => `${JSON.stringify(f.file)},,,,failed`),
    ].join('\n') + '\n',
  );
  return { reports, failed, index };
}
