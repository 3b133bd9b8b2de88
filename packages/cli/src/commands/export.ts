// `emofuse export`: a trained checkpoint as an ONNX model (the inference forward, dynamic batch and lengths,
// masks as inputs, class names and encoder ids in its metadata), checked against our own forward before it is
// written. Parsing and printing only: the graph is the model package's fusionToOnnx (the model's forward recorded
// on the ort backend), the check its checkOnnxAgainstModel.

import type { Command } from 'commander';
import { statSync } from 'node:fs';
import {
  ExportError,
  ONNX_INPUTS,
  ONNX_OUTPUTS,
  checkCheckpointFeatures,
  checkOnnxAgainstModel,
  exportCheckpointToOnnx,
  isFinetunedText,
  loadCheckpoint,
  randomFeatureBatches,
  standardizeRow,
  writeFileAtomic,
  type FeatureBatch,
} from '@emofuse/model';
import { addBackendOption, asUserError, int, loadFeatures, num, openBackend, type DataFlags } from '../options.ts';
import { UserError } from '../output.ts';
import { exportFinetuned } from '../finetune-text.ts';

interface ExportFlags extends DataFlags {
  checkpoint: string;
  onnx: string;
  backend: string;
  split: string;
  checkUtterances: string;
  tolerance: string;
  json?: boolean;
}

/** Default bound on |logit_onnx - logit_ours|: float32 sums in a different order (see README "Export and demo"). */
export const EXPORT_TOLERANCE = 1e-3;

export function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .description('write a trained checkpoint as an ONNX model, checked against our forward (onnxruntime CPU)')
    .requiredOption('--checkpoint <file>', 'a .safetensors checkpoint written by emofuse train')
    .requiredOption('--onnx <file>', 'the ONNX file to write');
  addBackendOption(cmd)
    .option('--features <path>', 'check on these features (a feature cache or arrays file) instead of seeded random ones')
    .option('--split <name>', 'with --features: the split to check on', 'test')
    .option('--check-utterances <n>', 'utterances to compare', '32')
    .option('--tolerance <atol>', 'largest |logit difference| accepted', String(EXPORT_TOLERANCE))
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The graph is the model's own inference forward (no dropout), recorded on the ort backend, in ONNX opset 20:
  inputs   text [batch, text_len, Ct], text_mask [batch, text_len], audio [batch, audio_len, Ca], audio_mask [batch, audio_len]
  outputs  logits [batch, K_cls], probabilities [batch, K_cls]
Masks are 1 for a real token and 0 for padding; text_len and audio_len may be anything up to the model's
lengths (metadata max_text_len, max_audio_len). The metadata also holds class_names (JSON), text_encoder,
audio_encoder, fusion, and 'emofuse' (the whole config as JSON). Features come from the encoders named there
(emofuse extract). Before writing, the ONNX model (onnxruntime-node, CPU) and our forward (--backend) classify
the same features and must agree within --tolerance.
A fine-tuned text model (train --finetune-text: finetuned-text.safetensors) exports with its text encoder in the
graph: input_ids [batch, text_len] int64 (the tokenizer named by metadata tokenizer; metadata text_input
token_ids) instead of text; checked on seeded random token rows, or on the --features cache's texts.

Examples:
  emofuse export --checkpoint runs/controlled/best.safetensors --onnx runs/controlled/model.onnx
  emofuse export --checkpoint runs/controlled/best.safetensors --onnx model.onnx --features runs/cache-controlled --split test`,
    );
  cmd.action(async (o: ExportFlags) => {
    const tolerance = num(o.tolerance, '--tolerance');
    const n = int(o.checkUtterances, '--check-utterances');
    if (isFinetunedText(o.checkpoint)) return exportFinetuned({ ...o, tolerance, n }); // its encoder in the graph, token ids in
    const fail = (err: unknown): never => {
      if (err instanceof ExportError) throw new UserError(err.message);
      return asUserError(err);
    };
    let exported: Awaited<ReturnType<typeof exportCheckpointToOnnx>>;
    try {
      exported = await exportCheckpointToOnnx(o.checkpoint, typeof EMOFUSE_VERSION === 'string' ? EMOFUSE_VERSION : 'dev');
    } catch (err) {
      fail(err);
    }
    const { onnx, meta, fallback } = exported!;
    const c = meta.config;
    let batches: FeatureBatch[];
    let source: string;
    if (o.features || o.synthetic) {
      const { features, source: s } = loadFeatures(o);
      try {
        checkCheckpointFeatures(meta, features, o.checkpoint, s);
      } catch (err) {
        fail(err);
      }
      const split = features.splits[o.split];
      if (!split) throw new UserError(`--split ${o.split}: ${s} has splits ${Object.keys(features.splits).join(', ')}`);
      const idx = Array.from({ length: Math.min(n, split.size) }, (_, i) => i);
      batches = [];
      for (let i = 0; i < idx.length; i += 8) batches.push(split.batch(idx.slice(i, i + 8)));
      source = `${idx.length} utterances of ${s}, split '${o.split}'`;
    } else {
      batches = randomFeatureBatches(c, Math.ceil(n / 4), 4);
      source = `${batches.length * 4} seeded random feature sets (lengths 1..${c.maxTextLen} text, 1..${c.maxAudioLen} audio)`;
    }
    const backend = await openBackend(o.backend);
    let check: Awaited<ReturnType<typeof checkOnnxAgainstModel>>;
    try {
      const { model } = (() => {
        try {
          return loadCheckpoint(backend, o.checkpoint);
        } catch (err) {
          return fail(err);
        }
      })();
      // A --speaker-norm checkpoint: the graph takes raw features (the lone-utterance statistics folded in); our forward
      // gets them standardized by those statistics first, as predict does for a lone clip.
      const prepare = (fb: FeatureBatch): FeatureBatch => {
        if (!fallback) return fb;
        const copy = { ...fb, text: fb.text.slice(), audio: fb.audio.slice() };
        for (let r = 0; r < fb.labels.length; r++) standardizeRow(copy, r, fallback);
        return copy;
      };
      check = await checkOnnxAgainstModel(onnx, model, batches, prepare).catch(fail);
    } finally {
      await backend.destroy();
    }
    const ok = check.maxAbsLogits <= tolerance;
    if (ok) writeFileAtomic(o.onnx, onnx);
    const result = {
      onnx: ok ? o.onnx : null,
      bytes: onnx.length,
      fusion: c.fusion,
      classNames: meta.classNames,
      textEncoder: meta.textEncoder,
      audioEncoder: meta.audioEncoder,
      inputs: ONNX_INPUTS,
      outputs: ONNX_OUTPUTS,
      check: { ...check, source, tolerance, ok },
    };
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(
        `${o.checkpoint}: fusion ${c.fusion}, ${meta.classNames.length} classes (${meta.classNames.join(', ')}), encoders ` +
          `${meta.textEncoder} + ${meta.audioEncoder}`,
      );
      console.log(`check: ${check.utterances} utterances (${source})`);
      console.log(
        `  onnxruntime CPU vs our forward (${check.backend}): max |logit diff| ${check.maxAbsLogits.toExponential(2)}, max ` +
          `|probability diff| ${check.maxAbsProbabilities.toExponential(2)}, top class differs on ${check.argmaxDisagreements}`,
      );
      if (ok)
        console.log(
          `wrote ${o.onnx} (${(statSync(o.onnx).size / 1024).toFixed(0)} KiB; inputs ${ONNX_INPUTS.join(', ')}; outputs ` +
            `${ONNX_OUTPUTS.join(', ')})`,
        );
    }
    if (!ok)
      throw new UserError(
        `the ONNX model disagrees with our forward: max |logit diff| ${check.maxAbsLogits.toExponential(2)} > --tolerance ` +
          `${tolerance}; nothing written`,
      );
  });
}
