// emofuse as a library: load a checkpoint, classify the emotion of recordings. In the style of transformers.js'
// `pipeline()` and onnxruntime's `InferenceSession.create()`: an async factory, a call per input, `dispose()`.
//
//   import { EmotionClassifier } from '@emofuse/model';
//   const clf = await EmotionClassifier.load();   // the shipped default model; or load('run/best.safetensors', { backend: 'cpu' })
//   const { labels, probs, top } = await clf.classify({ audio: 'clip.wav', text: 'What a great day.' });
//   await clf.dispose();
//
// The work is Predictor's (predict.ts), the code behind `emofuse predict`: the encoders recorded in the checkpoint,
// the same padding and batching, Whisper when no text is given. The layers below it (FusionModel, the backends,
// train(), the feature cache, the kernels) are exported beside it for those who train.

import { DEFAULT_MODEL } from './default-model.ts';
import type { EncoderOptions } from './encoders/device.ts';
import type { Backend } from './fusion/backend.ts';
import { DEFAULT_BACKEND, openBackend, type BackendChoice } from './fusion/open-backend.ts';
import { Predictor, type Prediction, type PredictInput } from './predict.ts';

export interface ClassifierOptions {
  /**
   * Where the fusion model runs: a backend name (`'auto'`, the default: wgsl on a hardware GPU, else ort; `'wgsl'`,
   * `'ort'`, `'cpu'`), or a Backend already opened (then it stays open after `dispose()`: it is yours).
   */
  backend?: BackendChoice | Backend;
  /** Where the network encoders (bert, ast, whisper) run and how webgpu is checked, as `emofuse predict --device`. */
  encoders?: EncoderOptions;
  /** The Whisper model (hub id or folder) that transcribes audio given without text (default DEFAULT_ASR). */
  asr?: string;
}

export interface ClassifyInput {
  /** The recording: a file path (.wav; other formats through ffmpeg), or mono samples at `sampleRate`. */
  audio?: string | Float32Array;
  /** Samples per second of `audio` when it is a Float32Array (default 16000). */
  sampleRate?: number;
  /** What was said; transcribed from the audio (Whisper) when absent. */
  text?: string;
  /** A name for the input in error messages (default: the audio's path, else 'input'). */
  id?: string;
}

export interface Classification {
  /** The checkpoint's class names, in its order. */
  labels: readonly string[];
  /** [K_cls] probabilities, in `labels`' order (they sum to 1). */
  probs: Float32Array;
  /** The most probable class. */
  top: { label: string; prob: number };
  /** The words classified: the given text, or Whisper's transcript. */
  text: string;
  transcribed: boolean;
  /** The input was longer than the model's text or audio length and was cut. */
  truncated: boolean;
}

export class EmotionClassifier {
  private constructor(
    private readonly predictor: Predictor,
    private readonly ownedBackend: Backend | null,
  ) {}

  /**
   * Opens `checkpoint` (a .safetensors written by `emofuse train`) with the encoders it was trained on; without one,
   * the shipped default model (DEFAULT_MODEL: MELD's 7 emotions; CC BY-NC-SA 4.0 through its RAVDESS data). A fine-tuned
   * text model (`train --finetune-text`'s finetuned-text.safetensors, a delta on its base bert: model, which must be a
   * local folder) runs the words through its fine-tuned encoder, and the audio of a text + audio head through the audio
   * encoder of the features it was trained on.
   */
  static async load(checkpoint: string = DEFAULT_MODEL.file, options: ClassifierOptions = {}): Promise<EmotionClassifier> {
    const given = options.backend;
    const backend = typeof given === 'object' ? given : await openBackend(given ?? DEFAULT_BACKEND, 'options.backend');
    const owned = backend === given ? null : backend;
    try {
      const predictor = await Predictor.open(backend, checkpoint, { ...options.encoders, ...(options.asr ? { asr: options.asr } : {}) });
      return new EmotionClassifier(predictor, owned);
    } catch (err) {
      await owned?.destroy();
      throw err;
    }
  }

  /** The class names, in the order of `probs`. */
  get labels(): readonly string[] {
    return this.predictor.classNames;
  }

  /** The checkpoint reads text only (`--fusion text`): audio is needed only to transcribe missing text. */
  get textOnly(): boolean {
    return this.predictor.textOnly;
  }

  /** Class probabilities for one utterance. */
  async classify(input: ClassifyInput): Promise<Classification> {
    return (await this.classifyAll([input]))[0]!;
  }

  /** Class probabilities for many utterances, batched as `emofuse predict --manifest` does; one bad input throws. */
  async classifyAll(inputs: readonly ClassifyInput[]): Promise<Classification[]> {
    const predictions = await this.predictor.predict(inputs.map(toPredictInput));
    return predictions.map((p) => this.toClassification(p));
  }

  /** Frees the encoders, the speech recognizer and the backend this classifier opened. */
  async dispose(): Promise<void> {
    try {
      await this.predictor.dispose();
    } finally {
      await this.ownedBackend?.destroy();
    }
  }

  private toClassification(p: Prediction): Classification {
    const labels = this.predictor.classNames;
    const probs = Float32Array.from(labels, (name) => p.probabilities[name]!); // [K_cls]
    return {
      labels,
      probs,
      top: { label: p.predicted, prob: p.probabilities[p.predicted]! },
      text: p.text,
      transcribed: p.transcribed,
      truncated: p.truncated,
    };
  }
}

function toPredictInput(x: ClassifyInput, i: number): PredictInput {
  return {
    id: x.id ?? (typeof x.audio === 'string' ? x.audio : `input ${i}`),
    ...(x.audio !== undefined ? { audio: x.audio } : {}),
    ...(x.sampleRate !== undefined ? { sampleRate: x.sampleRate } : {}),
    ...(x.text !== undefined ? { text: x.text } : {}),
  };
}
