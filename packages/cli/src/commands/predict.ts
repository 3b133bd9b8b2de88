// `emofuse predict`: the emotion of one utterance (its words and its recording) from a trained checkpoint. The
// text and audio are encoded with the encoders the checkpoint's features came from (recorded in the checkpoint).

import type { Command } from 'commander';
import {
  AudioError, EncoderSpecError, createAudioEncoder, createTextEncoder, loadAudio, loadCheckpoint, padBatch, type FeatureBatch,
} from '@emofuse/model';
import { table, UserError } from '../output.ts';
import { openBackend } from './train.ts';

interface PredictFlags {
  checkpoint: string;
  text: string;
  audio: string;
  backend: string;
  json?: boolean;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('classify the emotion of one utterance (text + audio) with a trained checkpoint')
    .requiredOption('--checkpoint <file>', 'a .safetensors checkpoint written by emofuse train')
    .requiredOption('--text <words>', 'what was said')
    .requiredOption('--audio <file>', 'the recording (.wav; other formats need ffmpeg)')
    .option('--backend <name>', "'wgsl' or 'cpu'", 'wgsl')
    .option('--json', 'print the probabilities as JSON')
    .addHelpText(
      'after',
      `
The checkpoint must come from features of real encoders (emofuse extract), not from --synthetic or arrays.

Examples:
  emofuse predict --checkpoint runs/controlled/best.safetensors --text "What a great day, I love it." --audio clip.wav
  emofuse predict --checkpoint runs/controlled/best.safetensors --text "This is awful." --audio clip.wav --json`,
    )
    .action(async (o: PredictFlags) => {
      const backend = await openBackend(o.backend);
      try {
        let loaded;
        try {
          loaded = loadCheckpoint(backend, o.checkpoint);
        } catch (err) {
          throw new UserError(`${(err as Error).message}`);
        }
        const { model, meta } = loaded;
        const c = model.config;
        if (['synthetic', 'arrays'].includes(meta.textEncoder) || ['synthetic', 'arrays'].includes(meta.audioEncoder)) {
          throw new UserError(`${o.checkpoint} was trained on ${meta.textEncoder} features, which no encoder can produce from text and audio; train on a feature cache from 'emofuse extract'`);
        }
        let texts, clips;
        try {
          const te = await createTextEncoder(meta.textEncoder);
          const ae = await createAudioEncoder(meta.audioEncoder);
          texts = await te.encode([o.text]);
          clips = await ae.encode([loadAudio(o.audio, { sampleRate: ae.sampleRate })]);
          await te.dispose?.();
          await ae.dispose?.();
        } catch (err) {
          if (err instanceof AudioError || err instanceof EncoderSpecError) throw new UserError(err.message);
          throw err;
        }
        if (texts.C !== c.textDim || clips.C !== c.audioDim) {
          throw new UserError(`${o.checkpoint} expects ${c.textDim} x ${c.audioDim} features; encoders ${meta.textEncoder}, ${meta.audioEncoder} gave ${texts.C} x ${clips.C}`);
        }
        const fb: FeatureBatch = {
          ids: ['input'], labels: Int32Array.of(-1), text: texts.tokens, textMask: texts.mask, Tt: texts.T, audio: clips.tokens, audioMask: clips.mask, Ta: clips.T,
        };
        const inputs = padBatch(fb, 1, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim);
        const logits = Array.from(await model.predict(inputs));
        const m = Math.max(...logits);
        const e = logits.map((x) => Math.exp(x - m));
        const s = e.reduce((a, b) => a + b, 0);
        const probs = meta.classNames.map((name, k) => ({ name, p: e[k]! / s })).sort((a, b) => b.p - a.p);
        const truncated = texts.T > c.maxTextLen || clips.T > c.maxAudioLen;
        if (o.json) {
          console.log(JSON.stringify({ predicted: probs[0]!.name, probabilities: Object.fromEntries(probs.map((x) => [x.name, x.p])), truncated }, null, 2));
          return;
        }
        console.log(`${probs[0]!.name}\n`);
        console.log(table(probs.map((x) => [x.name, `${(100 * x.p).toFixed(1)}%`]), ['class', 'probability']));
        if (truncated) console.log(`\n(note: the input was longer than the model's ${c.maxTextLen} text / ${c.maxAudioLen} audio tokens and was truncated)`);
      } finally {
        await backend.destroy();
      }
    });
}
