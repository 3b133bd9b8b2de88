// Speech recognition for `emofuse predict --audio` without `--text`: a Whisper model through transformers.js.
// Found like the other transformers.js models (a folder path, then <EMOFUSE_MODELS>/<id>/, else a download by
// id unless EMOFUSE_OFFLINE is set); when none can be had the error names the folders searched.

import { loadTransformers } from './transformers-env.ts';
import { locateModel, withLocation } from './transformers.ts';

export const DEFAULT_ASR = 'Xenova/whisper-tiny.en';

export interface Transcriber {
  /** The model id or folder it was loaded from. */
  id: string;
  /** 16 kHz mono clips in, one transcript each. */
  transcribe(clips: readonly Float32Array[]): Promise<string[]>;
  dispose(): Promise<void>;
}

type AsrPipeline = ((audio: Float32Array) => Promise<{ text: string }>) & { dispose?: () => Promise<void> };

export async function createTranscriber(spec = DEFAULT_ASR): Promise<Transcriber> {
  const loc = locateModel(spec, 'whisper');
  const { pipeline } = await loadTransformers();
  const asr = (await withLocation(loc, (name) =>
    pipeline('automatic-speech-recognition', name, { dtype: 'fp32', device: 'cpu' }),
  )) as unknown as AsrPipeline;
  return {
    id: spec,
    async transcribe(clips) {
      const out: string[] = [];
      for (const clip of clips) out.push((await asr(clip)).text.trim());
      return out;
    },
    async dispose() {
      await asr.dispose?.();
    },
  };
}
