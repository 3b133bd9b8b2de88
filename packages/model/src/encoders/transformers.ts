// transformers.js encoders (`bert`, `ast`): placeholder until the tiny ONNX fixtures exist.
import type { AudioEncoder, TextEncoder } from './types.ts';

export async function createBertEncoder(model?: string): Promise<TextEncoder> {
  throw new Error(`bert encoder (${model ?? 'default'}) is not implemented yet`);
}
export async function createAstEncoder(model?: string): Promise<AudioEncoder> {
  throw new Error(`ast encoder (${model ?? 'default'}) is not implemented yet`);
}
