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
import { checkpointSpeakerFallback, standardizeRow, trainedWithSpeakerNorm, type SpeakerFallback } from './fusion/input-norm.ts';
import { SPEAKER_MIN_CLIPS, SpeakerSums, standardizeRunning } from './fusion/speaker-sums.ts';
import { argmax, softmax } from './metrics/metrics.ts';
import type { CheckpointMeta } from './train/checkpoint.ts';
import { bucketLength, padBatch } from './train/data.ts';
import { isFinetunedText, openFinetuned, predictTokens, textTokenizer, truncateTokens } from './train/finetune-text.ts';
import type { TrainableTextEncoder } from './fusion/text-encoder.ts';
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
  /**
   * Who speaks (a manifest's `speaker` column): for a checkpoint trained with --speaker-norm, the clips of one speaker
   * are standardized with that speaker's statistics over the clips given together (SPEAKER_MIN_CLIPS or more).
   */
  speaker?: string;
}

/**
 * Which statistics standardized an utterance's inputs before the model's train statistics, for a checkpoint trained
 * with --speaker-norm: its speaker's ('speaker': the clips given with the same speaker), its recording's ('recording':
 * analyze, the segments of the recording so far, one speaker assumed), or none ('train': the train statistics only, for
 * a lone clip, as training treats an utterance without a speaker).
 */
export type Standardization = 'speaker' | 'recording' | 'train';

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
  /** For a checkpoint trained with --speaker-norm: which statistics standardized the inputs (Standardization). */
  standardization?: Standardization;
}

// The running statistics of a speaker, a recording or the demo page's session (browser-safe, beside input-norm.ts).
export { SPEAKER_MIN_CLIPS, SpeakerSums, standardizeRunning } from './fusion/speaker-sums.ts';

export class PredictError extends Error {
  override name = 'PredictError';
}

const CHUNK = 16;

/** One chunk of inputs encoded: its unpadded features and what each prediction reports besides the scores. */
interface EncodedChunk {
  chunk: PredictInput[];
  texts: string[];
  fb: FeatureBatch; // [n, Tt, textDim], [n, Ta, audioDim]
  textLens: Int32Array;
  audioLens: Int32Array;
  /** A fine-tuned text model's input instead of text features: each text's token ids, cut to maxTextLen. */
  tokens?: number[][];
}

/**
 * A fine-tuned text model (train --finetune-text's delta): the trainable encoder the words go through (as token ids of its
 * base model's tokenizer) and the head over its states, on `backend`; encodeBatch is where the two meet, as in training.
 */
interface FinetunedText {
  backend: Backend;
  encoder: TrainableTextEncoder;
  tokenize: (texts: string[]) => Promise<number[][]>;
}
/**
 * The most audio predict reads from one clip: more than any encoder's window (logmel and whisper read 30 s, the
 * model far fewer tokens), so results do not change, while an hour-long recording costs what 2 minutes cost.
 */
export const PREDICT_MAX_AUDIO_SECONDS = 120;

export class Predictor {
  private transcriber: Transcriber | null = null;
  /**
   * A --speaker-norm checkpoint's pooled raw train statistics (fusion/input-norm.ts SpeakerFallback): what a clip
   * without statistics of its own ('train') is standardized with; null for a checkpoint from before them (such a clip
   * then reaches the model's train statistics raw, as it always did).
   */
  readonly speakerFallback: SpeakerFallback | null;

  private constructor(
    readonly model: FusionModel,
    readonly meta: CheckpointMeta,
    private readonly textEncoder: TextEncoder | null, // null: a fine-tuned text model (`finetuned`) encodes the words
    private readonly audioEncoder: AudioEncoder | null,
    private readonly asrModel: string,
    checkpoint = 'the checkpoint',
    private readonly finetuned: FinetunedText | null = null,
  ) {
    try {
      this.speakerFallback = checkpointSpeakerFallback(meta, checkpoint);
    } catch (err) {
      throw new PredictError(`${(err as Error).message}: the checkpoint is damaged; use another one or train again`);
    }
  }

  /** Row r of `fb` has no statistics of its own: standardized with the pooled train statistics when the checkpoint has them. */
  private lone(fb: FeatureBatch, r: number): 'train' {
    if (this.speakerFallback) standardizeRow(fb, r, this.speakerFallback);
    return 'train';
  }

  /** `options.device` / `check` / `onFallback`: where the network encoders run and how webgpu is checked (../encoders/device-check.ts). */
  static async open(backend: Backend, checkpoint: string, options: { asr?: string } & EncoderOptions = {}): Promise<Predictor> {
    if (isFinetunedText(checkpoint)) return Predictor.openFinetuned(backend, checkpoint, options);
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
    return new Predictor(model, meta, te, ae, options.asr ?? DEFAULT_ASR, checkpoint);
  }

  /**
   * A fine-tuned text model (FINETUNED_FILE of train --finetune-text: a delta on its base bert: model): the words are
   * tokenized by the base model's tokenizer and go through the fine-tuned encoder and the head (predictTokens,
   * encodeBatch), the audio of a head that reads it through the audio encoder of the features it was trained on,
   * standardized by the delta's norm.audio.* (inside the head, as eval).
   */
  private static async openFinetuned(backend: Backend, checkpoint: string, options: { asr?: string } & EncoderOptions): Promise<Predictor> {
    let m: ReturnType<typeof openFinetuned>;
    try {
      m = openFinetuned(backend, checkpoint);
    } catch (err) {
      const msg = (err as Error).message;
      const convert = /convert_minilm|Offline, from PyPI/.test(msg)
        ? ''
        : ": convert its base model into EMOFUSE_MODELS (for all-MiniLM-L6-v2: 'python3 scripts/convert_minilm.py')";
      throw new PredictError(`${checkpoint}: ${msg}${convert}`);
    }
    const c = m.model.config;
    const audioId = m.model.spec.audio ? m.audioEncoder : 'none';
    if (audioId === undefined)
      throw new PredictError(
        `${checkpoint}: a fine-tuned ${c.fusion} model written before deltas recorded the audio encoder of their features, so ` +
          `predict cannot tell how to encode a recording: train it again with train --finetune-text (or use emofuse eval on its cache)`,
      );
    if (audioId === 'synthetic' || audioId === 'arrays')
      throw new PredictError(
        `${checkpoint} was trained on ${audioId} audio features, which no encoder can produce from a recording; train it on a ` +
          `feature cache from 'emofuse extract'`,
      );
    const on: EncoderOptions = { device: options.device, check: options.check, onFallback: options.onFallback };
    const ae = audioId === 'none' ? null : await createAudioEncoder(audioId, on);
    if (ae && ae.dim !== c.audioDim) {
      await ae.dispose?.();
      throw new PredictError(`${checkpoint} expects ${c.audioDim}-dimensional audio features; encoder ${audioId} gives ${ae.dim}`);
    }
    const meta: CheckpointMeta = {
      format: 1,
      config: c,
      classNames: m.classNames,
      step: 0,
      textEncoder: `bert:${m.modelSpec} (fine-tuned)`,
      audioEncoder: audioId,
      metrics: {},
      train: {},
    };
    const tokenize = await textTokenizer(m.modelSpec).catch((err: Error) => {
      throw new PredictError(`${checkpoint}: the tokenizer of its base model '${m.modelSpec}' cannot be loaded: ${err.message}`);
    });
    const ft: FinetunedText = { backend, encoder: m.encoder, tokenize };
    return new Predictor(m.model, meta, null, ae, options.asr ?? DEFAULT_ASR, checkpoint, ft);
  }

  /** The checkpoint reads text only (no audio encoder): --audio is needed only to transcribe missing text. */
  get textOnly(): boolean {
    return this.audioEncoder === null;
  }

  get classNames(): readonly string[] {
    return this.meta.classNames;
  }

  /**
   * The checkpoint was trained with --speaker-norm: each speaker's inputs standardized with the speaker's own
   * statistics before the train statistics (predict then does the same where speakers are known: `speaker`, `recording`).
   */
  get speakerNorm(): boolean {
    return trainedWithSpeakerNorm(this.meta);
  }

  /**
   * Classifies every input, CHUNK at a time; `onProgress` gets the number done so far. An input whose audio cannot
   * be used throws, unless `onFailure` is given: then it is reported there and skipped, and the rest are classified.
   * For a --speaker-norm checkpoint (`speakerNorm`): the inputs of each `speaker` with SPEAKER_MIN_CLIPS or more
   * clips among `inputs` are standardized with that speaker's statistics (all inputs are encoded first), or, given
   * `recording`, every input with the running statistics of the recording (its clips so far, this one included,
   * added to `recording`); the others get the train statistics only. Each prediction says which (`standardization`).
   */
  async predict(
    inputs: readonly PredictInput[],
    onProgress?: (done: number) => void,
    onFailure?: (input: PredictInput, err: Error) => void,
    options: { recording?: SpeakerSums } = {},
  ): Promise<Prediction[]> {
    const norm = !this.speakerNorm ? null : options.recording ? 'recording' : 'speaker';
    const out: Prediction[] = [];
    const encoded: EncodedChunk[] = [];
    let done = 0;
    for (let i = 0; i < inputs.length; i += CHUNK) {
      const e = await this.encodeChunk(inputs.slice(i, i + CHUNK), onFailure);
      done += CHUNK;
      if (!e) continue;
      if (norm === 'speaker')
        encoded.push(e); // classified once every speaker's clips are encoded
      else if (norm === 'recording') {
        const rec = options.recording!;
        const how = e.chunk.map((_, r) => standardizeRunning(rec, e.fb, r, this.speakerFallback));
        out.push(...(await this.classify(e, how)));
      } else out.push(...(await this.classify(e, norm ? e.chunk.map((_, r) => this.lone(e.fb, r)) : null)));
      onProgress?.(Math.min(done, inputs.length));
    }
    if (norm !== 'speaker') return out;
    const c = this.model.config;
    const speakers = new Map<string, SpeakerSums>();
    for (const e of encoded) {
      e.chunk.forEach((u, r) => {
        if (!u.speaker) return;
        const sums = speakers.get(u.speaker) ?? new SpeakerSums(c.textDim, c.audioDim);
        speakers.set(u.speaker, sums);
        sums.add(e.fb, r);
      });
    }
    for (const e of encoded) {
      const how = e.chunk.map((u, r): Standardization => {
        const sums = u.speaker ? speakers.get(u.speaker) : undefined;
        if (!sums || sums.clips < SPEAKER_MIN_CLIPS) return this.lone(e.fb, r);
        sums.standardize(e.fb, r);
        return 'speaker';
      });
      out.push(...(await this.classify(e, how)));
    }
    return out;
  }

  /** One chunk's inputs checked, transcribed where they have no text, and encoded; null when none of them can be used. */
  private async encodeChunk(
    inputs: readonly PredictInput[],
    onFailure?: (input: PredictInput, err: Error) => void,
  ): Promise<EncodedChunk | null> {
    const rate = this.audioEncoder?.sampleRate ?? 16_000;
    const chunk: PredictInput[] = [];
    const clips: (Float32Array | null)[] = [];
    for (const u of inputs) {
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
    if (!chunk.length) return null;
    const texts = await this.textsFor(chunk, clips);
    // a fine-tuned text model: token ids (the encoder runs inside classify, with the head); else the text features
    const raw = this.finetuned ? await this.finetuned.tokenize(texts) : null;
    const t = this.textEncoder
      ? await this.textEncoder.encode(texts)
      : { tokens: new Float32Array(0), mask: new Float32Array(0), T: 0, lengths: Int32Array.from(raw!, (r) => r.length) };
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
    const tokens = raw?.map((r) => truncateTokens(r, this.model.config.maxTextLen));
    return { chunk, texts, fb, textLens: t.lengths, audioLens: a.lengths, ...(tokens ? { tokens } : {}) };
  }

  /** An encoded chunk through the model; `how`: each row's Standardization, for a --speaker-norm checkpoint. */
  private async classify(e: EncodedChunk, how: readonly Standardization[] | null): Promise<Prediction[]> {
    const c = this.model.config;
    const { chunk, texts, fb } = e;
    const logits = this.finetuned
      ? await this.finetunedLogits(e, this.finetuned)
      : await this.model.predict(padBatch(fb, chunk.length, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim)); // [n, K_cls]
    const K = c.numClasses;
    const bad = logits.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new PredictError(
        `the model gave a non-finite score (${logits[bad]}) for '${chunk[Math.floor(bad / K)]!.id}': its input features or the ` +
          `checkpoint hold values ` +
          `it cannot use; check the clip and the checkpoint (emofuse eval on its features)`,
      );
    }
    return chunk.map((u, r) => {
      const p = softmax(logits, r * K, K);
      const probabilities = Object.fromEntries(this.meta.classNames.map((name, k) => [name, p[k]!]));
      const best = argmax(logits, r * K, K);
      return {
        id: u.id,
        text: texts[r]!,
        transcribed: u.text === undefined,
        predicted: this.meta.classNames[best]!,
        probabilities,
        ...(u.label !== undefined ? { label: u.label } : {}),
        truncated: e.textLens[r]! > c.maxTextLen || e.audioLens[r]! > c.maxAudioLen,
        ...(how ? { standardization: how[r]! } : {}),
      };
    });
  }

  /** Logits [n * K_cls] of a chunk through a fine-tuned text model: its token rows, and the audio its head reads. */
  private async finetunedLogits(e: EncodedChunk, ft: FinetunedText): Promise<Float32Array> {
    const c = this.model.config;
    const audioOf = this.model.spec.audio ? (idx: readonly number[]) => packAudio(e, idx, c.maxAudioLen, c.audioDim) : undefined;
    const m = { encoder: ft.encoder, model: this.model };
    return Float32Array.from((await predictTokens(ft.backend, m, e.tokens!, e.chunk.length, audioOf)).flat());
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
    await this.textEncoder?.dispose?.();
    await this.audioEncoder?.dispose?.();
    await this.transcriber?.dispose();
  }
}

/**
 * The audio features [B, Ta, Ca] and mask [B, Ta] of rows idx of an encoded chunk at their bucketed length (at most
 * maxAudioLen), as a cache split's are packed for eval (finetune-text.ts audioBatch).
 */
function packAudio(e: EncodedChunk, idx: readonly number[], maxAudioLen: number, C: number) {
  const { fb } = e;
  const Ta = bucketLength(Math.max(1, ...idx.map((i) => e.audioLens[i]!)), maxAudioLen);
  const audio = new Float32Array(idx.length * Ta * C);
  const audioMask = new Float32Array(idx.length * Ta);
  const la = Math.min(Ta, fb.Ta);
  idx.forEach((i, b) => {
    audio.set(fb.audio.subarray(i * fb.Ta * C, (i * fb.Ta + la) * C), b * Ta * C);
    audioMask.set(fb.audioMask.subarray(i * fb.Ta, i * fb.Ta + la), b * Ta);
  });
  return { audio, audioMask };
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

/**
 * Rows of a CSV/JSONL manifest to classify: id and audio required; text, label and speaker optional (an empty speaker:
 * unknown, the train statistics only).
 */
export function readPredictManifest(file: string): PredictInput[] {
  const path = resolve(file);
  const rows = readManifestRows(path);
  if (!rows.length) throw new DatasetError(path, 'manifest has no rows');
  return rows.map((row, i) => {
    for (const f of ['id', 'audio']) {
      if (row[f] === undefined || String(row[f]).trim() === '') {
        throw new DatasetError(
          path,
          `missing '${f}' (a predict manifest needs id and audio; text, label and speaker are optional)`,
          i + 1,
          f,
        );
      }
    }
    const audio = String(row.audio).trim();
    const text = row.text === undefined || String(row.text).trim() === '' ? undefined : String(row.text);
    const label = row.label === undefined || String(row.label).trim() === '' ? undefined : String(row.label).trim();
    const speaker = row.speaker === undefined || String(row.speaker).trim() === '' ? undefined : String(row.speaker).trim();
    return {
      id: String(row.id),
      audio: isAbsolute(audio) ? audio : join(dirname(path), audio),
      ...(text !== undefined ? { text } : {}),
      ...(label !== undefined ? { label } : {}),
      ...(speaker !== undefined ? { speaker } : {}),
    };
  });
}
