// One analysed segment: what analyze.ts produces and report.ts writes (apart from both: no import cycle).

export interface AnalyzedSegment {
  index: number;
  /** Seconds from the start of the recording. */
  start: number;
  end: number;
  /** ok: classified; too-short: shorter than ANALYZE_MIN_SECONDS, not judged; failed: the model could not use it (see `error`). */
  status: 'ok' | 'too-short' | 'failed';
  text: string;
  /** Where `text` came from. */
  textFrom: 'asr' | 'subtitles' | 'none';
  emotion: string | null;
  /** Class -> probability, in the checkpoint's class order; null when not judged. */
  probabilities: Record<string, number> | null;
  /** The input was longer than the model's text or audio length and was cut (as predict reports it). */
  truncated?: boolean;
  /** A --speaker-norm checkpoint: 'recording' (the recording's segments so far) or 'train' (the first segment). */
  standardization?: 'recording' | 'train';
  error?: string;
}
