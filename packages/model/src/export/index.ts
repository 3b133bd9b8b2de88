// Using a trained model outside emofuse: the ONNX export of the fusion forward and its check against our forward.

import { checkpointSpeakerFallback, foldSpeakerFallback, type InputNorm, type SpeakerFallback } from '../fusion/input-norm.ts';
import { DataError } from '../errors.ts';
import { readCheckpoint, readInputNorm, type CheckpointMeta } from '../train/checkpoint.ts';
import { type FinetunedFile, readFinetunedFile } from '../train/finetune-text.ts';
import { checkpointParams, ExportError, fusionToOnnx, type NamedTensor } from './fusion-onnx.ts';

export * from './fusion-onnx.ts';
export * from './validate.ts';
export { OnnxGraph } from '../onnx/graph.ts';

/**
 * A checkpoint's metadata and parameters, or an ExportError saying what the file is instead. `norm`: the input
 * standardization the graph applies; for a --speaker-norm checkpoint with a lone-utterance fallback (`fallback`) it is
 * folded in (foldSpeakerFallback), so the graph takes raw features as predict does for a lone clip.
 */
export function readCheckpointForExport(path: string): {
  meta: CheckpointMeta;
  params: Map<string, NamedTensor>;
  norm: InputNorm | null;
  fallback: SpeakerFallback | null;
} {
  let tensors: Map<string, NamedTensor>;
  let meta: CheckpointMeta;
  try {
    ({ tensors, meta } = readCheckpoint(path)); // the checks every load makes (train/checkpoint.ts)
  } catch (err) {
    if (err instanceof DataError) throw new ExportError(err.message);
    throw err;
  }
  let norm: InputNorm | null;
  try {
    norm = readInputNorm(tensors, path);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  let fallback: SpeakerFallback | null;
  try {
    fallback = checkpointSpeakerFallback(meta, path);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  return { meta, params: checkpointParams(tensors), norm: fallback ? foldSpeakerFallback(norm, fallback) : norm, fallback };
}

/**
 * The ONNX bytes of a fine-tuned text model (train --finetune-text's FINETUNED_FILE): its encoder in the graph, which
 * takes token ids of the tokenizer named in its metadata; `file` the model read (for the check against our forward).
 */
export async function exportFinetunedToOnnx(
  path: string,
  producerVersion?: string,
): Promise<{ onnx: Uint8Array; meta: CheckpointMeta; file: FinetunedFile }> {
  let file: FinetunedFile;
  try {
    file = readFinetunedFile(path);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  const tokenizer = `bert:${file.modelSpec}`;
  const meta: CheckpointMeta = {
    format: 1,
    config: file.head,
    classNames: file.classNames,
    step: 0,
    textEncoder: `${tokenizer} (fine-tuned, in the graph)`,
    audioEncoder: 'none',
    metrics: {},
    train: {},
  };
  const onnx = await fusionToOnnx(meta, file.headParams, { producerVersion, norm: file.norm, textEncoder: { ...file.encoder, tokenizer } });
  return { onnx, meta, file };
}

/**
 * The ONNX bytes of a checkpoint file; `fallback`: a --speaker-norm checkpoint's lone-utterance statistics, folded into
 * the graph (compare it with our forward on inputs standardized by them: standardizeRow).
 */
export async function exportCheckpointToOnnx(
  path: string,
  producerVersion?: string,
): Promise<{ onnx: Uint8Array; meta: CheckpointMeta; fallback: SpeakerFallback | null }> {
  const { meta, params, norm, fallback } = readCheckpointForExport(path);
  return { onnx: await fusionToOnnx(meta, params, { norm, producerVersion }), meta, fallback };
}
