// Speech recognition for `emofuse predict --audio` without `--text`: a Whisper model through transformers.js.
// Found like the other transformers.js models (a folder path, then <EMOFUSE_MODELS>/<id>/, else a download by
// id unless EMOFUSE_OFFLINE is set); when none can be had the error names the folders searched.

import { ENCODER_SESSION, loadTransformers } from './transformers-env.ts';
import { locateModel, withLocation } from './transformers.ts';

export const DEFAULT_ASR = 'Xenova/whisper-tiny.en';

export interface Transcriber {
  /** The model id or folder it was loaded from. */
  id: string;
  /** 16 kHz mono clips in, one transcript each. */
  transcribe(clips: readonly Float32Array[]): Promise<string[]>;
  dispose(): Promise<void>;
}

type AsrPipeline = ((audio: Float32Array, options?: { language?: string; task?: string }) => Promise<{ text: string }>) & {
  dispose?: () => Promise<void>;
};

export interface TranscriberOptions {
  /** A multilingual model's language ('german', 'de', ...; transformers.js's names): transcribed in it, never
   * translated. Left out, transformers.js assumes English. English-only models (tiny.en) take none. */
  language?: string;
}

export async function createTranscriber(spec = DEFAULT_ASR, options: TranscriberOptions = {}): Promise<Transcriber> {
  const loc = locateModel(spec, 'whisper');
  const { pipeline } = await loadTransformers();
  const asr = (await withLocation(loc, (name) =>
    pipeline('automatic-speech-recognition', name, { dtype: 'fp32', device: 'cpu', session_options: { ...ENCODER_SESSION } }),
  )) as unknown as AsrPipeline;
  return {
    id: spec,
    async transcribe(clips) {
      const out: string[] = [];
      const how = options.language ? { language: options.language, task: 'transcribe' } : undefined;
      for (const clip of clips) out.push((await asr(clip, how)).text.trim());
      return out;
    },
    async dispose() {
      await asr.dispose?.();
    },
  };
}
