// Classifying new utterances with a trained checkpoint: text and audio are encoded with the encoders the
// checkpoint's features came from (recorded in it), batched, padded to the model's lengths, and classified.
// An utterance without text is transcribed first (Whisper through transformers.js, loaded only when needed).

import { dirname, isAbsolute, join, resolve } from 'node:path';
import { AudioError, checkFinite, loadAudio, resampleTo, SILENCE_PEAK } from './audio/index.ts';
import { DatasetError } from './datasets/types.ts';
import { readManifestRows } from './datasets/manifest.ts';
import { createTranscriber, DEFAULT_ASR, type Transcriber } from './encoders/asr.ts';
import { createAudioEncoder, createTextEncoder } from './encoders/index.ts';
import type { AudioEncoder, TextEncoder } from './encoders/types.ts';
import type { FeatureBatch } from './features.ts';
import type { Backend } from './fusion/backend.ts';
import type { FusionModel } from './fusion/model.ts';
import { argmax, softmax } from './metrics/metrics.ts';
import type { CheckpointMeta } from './train/checkpoint.ts';
import { padBatch } from './train/data.ts';
import { loadCheckpoint } from './train/checkpoint.ts';
import type { EncoderOptions } from './encoders/device.ts';

export interface PredictInput {
  id: string;
  /** What was said; transcribed from the audio when absent. */
  text?: string;
  /**
   * The recording: a file path, or mono samples at `sampleRate` (may be absent for a text-only checkpoint,
   * `--fusion text`, when the text is given).
   */
  audio?: string | Float32Array;
  /** Samples per second of `audio` when it is samples (default: the audio encoder's rate, 16 kHz). */
  sampleRate?: number;
  /** The true class, when known (a labelled manifest): reported beside the prediction. */
  label?: string;
}

export interface Prediction {
  id: string;
  text: string;
  /** The text came from speech recognition. */
  transcribed: boolean;
  predicted: string;
  /** Class name -> probability, in the checkpoint's class order. */
  probabilities: Record<string, number>;
  label?: string;
  /** The input was longer than the model's text or audio length and was cut. */
  truncated: boolean;
}

export class PredictError extends Error {
  override name = 'PredictError';
}

const CHUNK = 16;
/**
 * The most audio predict reads from one clip: more than any encoder's window (logmel and whisper read 30 s, the
 * model far fewer tokens), so results do not change, while an hour-long recording costs what 2 minutes cost.
 */
export const PREDICT_MAX_AUDIO_SECONDS = 120;

export class Predictor {
  private transcriber: Transcriber | null = null;

  private constructor(
    readonly model: FusionModel,
    readonly meta: CheckpointMeta,
    private readonly textEncoder: TextEncoder,
    private readonly audioEncoder: AudioEncoder | null,
    private readonly asrModel: string,
  ) {}

  /** `options.device` / `check` / `onFallback`: where the network encoders run and how webgpu is checked (../encoders/device-check.ts). */
  static async open(backend: Backend, checkpoint: string, options: { asr?: string } & EncoderOptions = {}): Promise<Predictor> {
    const { model, meta } = loadCheckpoint(backend, checkpoint);
    for (const enc of [meta.textEncoder, meta.audioEncoder]) {
      if (enc === 'synthetic' || enc === 'arrays') {
        throw new PredictError(
          `${checkpoint} was trained on ${enc} features, which no encoder can produce from text and audio; train on a feature ` +
            `cache from 'emofuse extract'`,
        );
      }
    }
    const on: EncoderOptions = { device: options.device, check: options.check, onFallback: options.onFallback };
    const te = await createTextEncoder(meta.textEncoder, on);
    const textOnly = meta.audioEncoder === 'none'; // a --fusion text model on a text-only cache: no audio input
    const ae = textOnly
      ? null
      : await createAudioEncoder(meta.audioEncoder, on).catch(async (err) => {
          await te.dispose?.();
          throw err;
        });
    const c = model.config;
    if (te.dim !== c.textDim || (ae && ae.dim !== c.audioDim)) {
      throw new PredictError(
        `${checkpoint} expects ${c.textDim} x ${c.audioDim} features; encoders ${meta.textEncoder}, ${meta.audioEncoder} give ` +
          `${te.dim} x ${ae?.dim ?? 0}`,
      );
    }
    return new Predictor(model, meta, te, ae, options.asr ?? DEFAULT_ASR);
  }

  /** The checkpoint reads text only (no audio encoder): --audio is needed only to transcribe missing text. */
  get textOnly(): boolean {
    return this.audioEncoder === null;
  }

  get classNames(): readonly string[] {
    return this.meta.classNames;
  }

  /**
   * Classifies every input, CHUNK at a time; `onProgress` gets the number done so far. An input whose audio cannot
   * be used throws, unless `onFailure` is given: then it is reported there and skipped, and the rest are classified.
   */
  async predict(
    inputs: readonly PredictInput[],
    onProgress?: (done: number) => void,
    onFailure?: (input: PredictInput, err: Error) => void,
  ): Promise<Prediction[]> {
    const c = this.model.config;
    const out: Prediction[] = [];
    let done = 0;
    const rate = this.audioEncoder?.sampleRate ?? 16_000;
    for (let i = 0; i < inputs.length; i += CHUNK) {
      const chunk: PredictInput[] = [];
      const clips: (Float32Array | null)[] = [];
      for (const u of inputs.slice(i, i + CHUNK)) {
        try {
          const needAudio = this.audioEncoder !== null || u.text === undefined;
          if (needAudio && !u.audio) {
            throw new PredictError(
              `${u.id}: no audio given${this.audioEncoder ? ': this checkpoint reads audio' : ' and no text to classify'}`,
            );
          }
          clips.push(needAudio ? clipOf(u, rate) : null);
          chunk.push(u);
        } catch (err) {
          if (!onFailure || !(err instanceof AudioError || err instanceof PredictError)) throw err;
          onFailure(u, err);
        }
      }
      done += CHUNK;
      if (!chunk.length) continue;
      const texts = await this.textsFor(chunk, clips);
      const t = await this.textEncoder.encode(texts);
      const a = this.audioEncoder
        ? await this.audioEncoder.encode(clips as Float32Array[])
        : { tokens: new Float32Array(0), mask: new Float32Array(0), T: 0, lengths: new Int32Array(chunk.length) };
      const fb: FeatureBatch = {
        ids: chunk.map((u) => u.id),
        labels: new Int32Array(chunk.length).fill(-1),
        text: t.tokens,
        textMask: t.mask,
        Tt: t.T, // [n, Tt, textDim], [n, Tt]
        audio: a.tokens,
        audioMask: a.mask,
        Ta: a.T, // [n, Ta, audioDim], [n, Ta]
      };
      const logits = await this.model.predict(padBatch(fb, chunk.length, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim)); // [n, K_cls]
      const K = c.numClasses;
      const bad = logits.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) {
        throw new PredictError(
          `the model gave a non-finite score (${logits[bad]}) for '${chunk[Math.floor(bad / K)]!.id}': its input features or the ` +
            `checkpoint hold values ` +
            `it cannot use; check the clip and the checkpoint (emofuse eval on its features)`,
        );
      }
      chunk.forEach((u, r) => {
        const p = softmax(logits, r * K, K);
        const probabilities = Object.fromEntries(this.meta.classNames.map((name, k) => [name, p[k]!]));
        const best = argmax(logits, r * K, K);
        out.push({
          id: u.id,
          text: texts[r]!,
          transcribed: u.text === undefined,
          predicted: this.meta.classNames[best]!,
          probabilities,
          ...(u.label !== undefined ? { label: u.label } : {}),
          truncated: t.lengths[r]! > c.maxTextLen || a.lengths[r]! > c.maxAudioLen,
        });
      });
      onProgress?.(Math.min(done, inputs.length));
    }
    return out;
  }

  private async textsFor(chunk: readonly PredictInput[], clips: readonly (Float32Array | null)[]): Promise<string[]> {
    const missing = chunk.flatMap((u, i) => (u.text === undefined ? [i] : []));
    const texts = chunk.map((u) => u.text ?? '');
    if (!missing.length) return texts;
    if (!this.transcriber) {
      try {
        this.transcriber = await createTranscriber(this.asrModel);
      } catch (err) {
        throw new PredictError(
          `no text for '${chunk[missing[0]!]!.id}' and no speech recognition model to transcribe it: ${(err as Error).message}\n` +
            `Give the words with --text (or a 'text' column in the manifest), or make a Whisper model available (--asr <id or folder>).`,
        );
      }
    }
    const heard = await this.transcriber.transcribe(missing.map((i) => resampleFor(clips[i]!, this.audioEncoder?.sampleRate ?? 16_000)));
    for (const [j, i] of missing.entries()) texts[i] = heard[j]!;
    return texts;
  }

  async dispose(): Promise<void> {
    await this.textEncoder.dispose?.();
    await this.audioEncoder?.dispose?.();
    await this.transcriber?.dispose();
  }
}

/** The clip at the encoder's rate: a file through loadAudio, or given samples checked as loadAudio checks a file's. */
function clipOf(u: PredictInput, rate: number): Float32Array {
  if (typeof u.audio === 'string') return loadAudio(u.audio, { sampleRate: rate, maxSeconds: PREDICT_MAX_AUDIO_SECONDS });
  const from = u.sampleRate ?? rate;
  if (!(Number.isInteger(from) && from > 0))
    throw new PredictError(`${u.id}: sampleRate must be a whole number of samples per second, got ${from}`);
  const given = u.audio!.subarray(0, PREDICT_MAX_AUDIO_SECONDS * from);
  if (given.length === 0) throw new AudioError(u.id, 'empty', 'the audio has no samples');
  checkFinite(given, u.id);
  const mono = from === rate ? given : resampleTo(given, from, rate);
  if (!mono.some((x) => Math.abs(x) >= SILENCE_PEAK)) throw new AudioError(u.id, 'silent', 'audio is silent (peak below -80 dBFS)');
  return mono;
}

/** Whisper wants 16 kHz; every built-in audio encoder already reads 16 kHz, so this only guards the assumption. */
function resampleFor(clip: Float32Array, rate: number): Float32Array {
  if (rate !== 16_000) throw new PredictError(`speech recognition needs 16 kHz audio; the audio encoder reads ${rate} Hz`);
  return clip;
}

/** Rows of a CSV/JSONL manifest to classify: id and audio required; text and label optional. */
export function readPredictManifest(file: string): PredictInput[] {
  const path = resolve(file);
  const rows = readManifestRows(path);
  if (!rows.length) throw new DatasetError(path, 'manifest has no rows');
  return rows.map((row, i) => {
    for (const f of ['id', 'audio']) {
      if (row[f] === undefined || String(row[f]).trim() === '') {
        throw new DatasetError(path, `missing '${f}' (a predict manifest needs id and audio; text and label are optional)`, i + 1, f);
      }
    }
    const audio = String(row.audio).trim();
    const text = row.text === undefined || String(row.text).trim() === '' ? undefined : String(row.text);
    const label = row.label === undefined || String(row.label).trim() === '' ? undefined : String(row.label).trim();
    return {
      id: String(row.id),
      audio: isAbsolute(audio) ? audio : join(dirname(path), audio),
      ...(text !== undefined ? { text } : {}),
      ...(label !== undefined ? { label } : {}),
    };
  });
}
