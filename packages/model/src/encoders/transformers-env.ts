// Loads @huggingface/transformers lazily (it pulls in onnxruntime-node) and applies emofuse's model settings to
// its `env`: local models folder, remote downloads on/off, cache folder.

import { modelSettings } from './settings.ts';

type Transformers = typeof import('@huggingface/transformers');
let loaded: Promise<Transformers> | undefined;

export function loadTransformers(): Promise<Transformers> {
  loaded ??= import('@huggingface/transformers').then((t) => {
    t.env.localModelPath = modelSettings.modelsDir + '/';
    t.env.allowLocalModels = true;
    t.env.allowRemoteModels = !modelSettings.offline;
    t.env.cacheDir = modelSettings.cacheDir;
    return t;
  });
  return loaded;
}
