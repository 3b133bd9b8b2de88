// `emofuse predict`: the emotion of utterances (their words and their recordings) from a trained checkpoint.
// One utterance from --text/--audio, or many from a manifest. Parsing and printing only: the work is Predictor's.

import type { Command } from 'commander';
import {
  DEFAULT_ASR,
  DEFAULT_MODEL,
  ENCODER_DEVICES,
  Predictor,
  readPredictManifest,
  resolveEncoderDevice,
  writeFileAtomic,
  type PredictInput,
  type Prediction,
} from '@emofuse/model';
import { addBackendOption, asUserError, checkpointOrDefault, openBackend, userErrors } from '../options.ts';
import { table, UserError } from '../output.ts';
import { existsSync, statSync } from 'node:fs';

interface PredictFlags {
  checkpoint?: string;
  text?: string;
  audio?: string;
  manifest?: string;
  asr?: string;
  out?: string;
  backend: string;
  device: string;
  json?: boolean;
}

export function registerPredict(program: Command): void {
  const cmd = program
    .command('predict')
    .description('classify the emotion of utterances (text + audio): the shipped default model, or a checkpoint you trained')
    .option(
      '--checkpoint <file>',
      `a .safetensors checkpoint written by emofuse train, or its finetuned-text.safetensors (train --finetune-text) ` +
        `(default: the shipped model, ${DEFAULT_MODEL.name})`,
    )
    .option('--text <words>', 'what was said (omit it to transcribe the audio with --asr)')
    .option('--audio <file>', 'the recording (.wav; other formats need ffmpeg)')
    .option('--manifest <file>', 'many utterances: a CSV (header row) or JSONL file with id, audio[, text, label, speaker]')
    .option('--asr <model>', 'Whisper model (id or folder) that transcribes audio given without text', DEFAULT_ASR)
    .option('--out <file>', 'with --manifest: also write the predictions as JSONL')
    .option(
      '--device <where>',
      `where the bert / ast / whisper encoders run: ${ENCODER_DEVICES.join(', ')} (auto: webgpu on a hardware GPU adapter)`,
      'auto',
    );
  addBackendOption(cmd)
    .option('--json', 'print the predictions and all class probabilities as JSON')
    .addHelpText(
      'after',
      `
Without --checkpoint the shipped default model classifies MELD's 7 emotions (anger, disgust, fear, joy, neutral,
sadness, surprise) from English (and German) speech and its words; it was trained on RAVDESS, so its terms are
${DEFAULT_MODEL.licence} (docs/model-card.md: data, scores, limits). Its encoders (all-MiniLM-L6-v2, Whisper
tiny.en) come from the hub by id, or offline from EMOFUSE_MODELS after 'python3 scripts/convert_minilm.py' and
'python3 scripts/convert_whisper.py'.
A checkpoint must come from features of real encoders (emofuse extract), not from --synthetic or arrays;
text and audio are encoded with the encoders recorded in it. A fine-tuned text model (train --finetune-text's
finetuned-text.safetensors) runs the words through its own encoder (its base model's tokenizer) and, for a head
that reads audio (--fusion cross-self), the recording through the audio encoder of the features it was trained on.
Without --text the audio is transcribed by a Whisper model through transformers.js (downloaded by id, or from
EMOFUSE_MODELS; with EMOFUSE_OFFLINE=1 only local folders count), and the words used are printed.
A checkpoint trained with --speaker-norm standardizes each speaker's clips with that speaker's own statistics,
computed over the manifest's clips in the 'speaker' column (2 or more); a lone clip, or one without a speaker,
gets the pooled statistics of all train speakers, then the train statistics (a checkpoint from before 2026-12-07:
the train statistics only). Each prediction says which ('standardization': speaker or train).

Examples:
  emofuse predict --audio clip.wav                                   # the shipped model; Whisper hears the words
  emofuse predict --checkpoint runs/controlled/best.safetensors --text "What a great day, I love it." --audio clip.wav
  emofuse predict --checkpoint runs/controlled/best.safetensors --audio clip.wav --json
  emofuse predict --checkpoint runs/controlled/best.safetensors --manifest clips.csv --out predictions.jsonl`,
    )
    .action(async (o: PredictFlags) => {
      let inputs: PredictInput[];
      if (o.manifest) {
        if (o.text || o.audio) throw new UserError('give either --manifest or --text/--audio, not both');
        inputs = userErrors(() => readPredictManifest(o.manifest!));
      } else {
        if (!o.audio && o.text === undefined)
          throw new UserError("--audio <file> is required (or --manifest <file> for many utterances); see 'emofuse predict --help'");
        inputs = [{ id: o.audio ?? 'text', ...(o.audio ? { audio: o.audio } : {}), ...(o.text !== undefined ? { text: o.text } : {}) }];
      }
      if (o.out && existsSync(o.out) && statSync(o.out).isDirectory())
        throw new UserError(`--out ${o.out} is a folder: give a file path, e.g. ${o.out}/predictions.jsonl`);
      if (!(ENCODER_DEVICES as readonly string[]).includes(o.device))
        throw new UserError(`--device must be one of ${ENCODER_DEVICES.join(', ')}, got '${o.device}'`);
      const { device, check } = await resolveEncoderDevice(o.device);
      const checkpoint = checkpointOrDefault(o.checkpoint, o.json);
      const backend = await openBackend(o.backend);
      try {
        // on webgpu each network encoder is checked against the CPU first: refused (exit 2) or, with auto, moved to the cpu
        const onFallback = (why: string) => console.error(`emofuse predict: ${why}`);
        const predictor = await Predictor.open(backend, checkpoint, { asr: o.asr, device, check, onFallback }).catch(asUserError);
        try {
          if (!o.manifest && !o.audio && !predictor.textOnly) {
            throw new UserError(
              `--audio <file> is required: ${checkpoint} reads audio as well as text (only a --fusion text checkpoint classifies ` +
                `text alone)`,
            );
          }
          const failed: { id: string; message: string }[] = [];
          const predictions = await predictor
            .predict(
              inputs,
              (done) => {
                if (inputs.length > 1 && !o.json && process.stderr.isTTY) process.stderr.write(`\r${done}/${inputs.length} utterances`);
              },
              o.manifest ? (u, err) => failed.push({ id: u.id, message: err.message }) : undefined,
            )
            .catch(asUserError);
          if (inputs.length > 1 && !o.json && process.stderr.isTTY) process.stderr.write('\n');
          if (o.out) writeFileAtomic(o.out, predictions.map((p) => JSON.stringify(p)).join('\n') + (predictions.length ? '\n' : ''));
          if (predictions.length) print(predictions, predictor.classNames, o);
          if (predictor.speakerNorm && predictions.length && !o.json) console.log(`\n${speakerNormNote(predictions, checkpoint)}`);
          if (failed.length) {
            console.error(
              `\nemofuse predict: ${failed.length} of ${inputs.length} utterance(s) could not be ` +
                `classified${predictions.length ? ` (the other ${predictions.length} were${o.out ? `, written to ${o.out}` : ''})` : ''}:`,
            );
            for (const f of failed.slice(0, 20)) console.error(`  ${f.id}: ${f.message}`);
            if (failed.length > 20) console.error(`  ... and ${failed.length - 20} more`);
            process.exitCode = 2;
          }
        } finally {
          await predictor.dispose();
        }
      } finally {
        await backend.destroy();
      }
    });
}

function print(predictions: Prediction[], classNames: readonly string[], o: PredictFlags): void {
  if (o.json) {
    console.log(JSON.stringify(o.manifest ? predictions : predictions[0], null, 2));
    return;
  }
  if (!o.manifest) {
    const p = predictions[0]!;
    console.log(`${p.predicted}\n`);
    if (p.transcribed) console.log(`heard: "${p.text}"\n`);
    const rows = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
    console.log(
      table(
        rows.map(([name, q]) => [name, `${(100 * q).toFixed(1)}%`]),
        ['class', 'probability'],
      ),
    );
    if (p.truncated) console.log("\n(note: the input was longer than the model's text or audio length and was cut)");
    return;
  }
  const stats = predictions.some((p) => p.standardization !== undefined);
  const labelled = predictions.some((p) => p.label !== undefined);
  console.log(
    table(
      predictions.map((p) => [
        p.id,
        p.predicted,
        `${(100 * p.probabilities[p.predicted]!).toFixed(1)}%`,
        ...(labelled ? [p.label ?? '-'] : []),
        ...(stats ? [p.standardization ?? '-'] : []),
        p.transcribed ? `heard: ${p.text}` : '',
      ]),
      ['id', 'predicted', 'p', ...(labelled ? ['label'] : []), ...(stats ? ['standardized by'] : []), ''],
    ),
  );
  if (labelled) {
    const known = predictions.filter((p) => p.label !== undefined);
    const right = known.filter((p) => p.label === p.predicted).length;
    const unknownLabels = [...new Set(known.map((p) => p.label!).filter((l) => !classNames.includes(l)))];
    console.log(
      `\naccuracy ${((100 * right) / known.length).toFixed(1)}% on ${known.length} labelled utterances` +
        (unknownLabels.length ? ` (labels not among the model's classes: ${unknownLabels.join(', ')})` : ''),
    );
  }
  if (o.out) console.log(`wrote ${o.out}`);
}

/** What a --speaker-norm checkpoint did with the clips' statistics: how many by their speaker's, how many by the train statistics. */
function speakerNormNote(predictions: readonly Prediction[], checkpoint: string): string {
  const bySpeaker = predictions.filter((p) => p.standardization === 'speaker').length;
  const train = predictions.length - bySpeaker;
  return (
    `${checkpoint} was trained with --speaker-norm: ${bySpeaker} clip(s) standardized with their speaker's own statistics, ` +
    `${train} with the train statistics only` +
    (train ? " (a lone clip, or no 'speaker' column in the manifest: give each speaker's clips together)" : '')
  );
}
