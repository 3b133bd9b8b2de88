// @emofuse/model/browser: the part of the model package that runs in a web page, with no `node:` import: the fusion
// model on our WGSL kernels (navigator.gpu) or on the CPU references, the input standardization, a checkpoint
// loaded from its bytes (fetched, or a file the user chose), padding a batch to the model's lengths, and class
// probabilities. It takes features as `[B, T, C]` tokens + masks (FeatureBatch; an encoder of your own implements
// TextEncoder / AudioEncoder); the built-in encoders that make them from text and sound still read their files
// through node:fs (the demo page gives them an in-memory file system, packages/demo/web/node-shim.ts).
// test/package/browser-entry.test.ts bundles this entry for the browser and fails on any Node import.
//
//   import { Gpu } from '@emofuse/kernels';
//   import { WgslBackend, loadCheckpointBytes, padBatch, softmax } from '@emofuse/model/browser';
//   const backend = await WgslBackend.create(await Gpu.create());
//   const { model, meta } = loadCheckpointBytes(backend, new Uint8Array(await (await fetch(url)).arrayBuffer()), url);
//   const c = model.config;
//   const logits = await model.predict(padBatch(features, 1, c.maxTextLen, c.maxAudioLen, c.textDim, c.audioDim)); // [1, K_cls]
//   const probs = softmax(logits, 0, c.numClasses); // in meta.classNames' order

export * from './encoders/types.ts';
export * from './errors.ts';
export type * from './features.ts';
export * from './fusion/backend.ts';
export * from './fusion/backend-cpu.ts';
export * from './fusion/backend-wgsl.ts';
export * from './fusion/input-norm.ts';
export * from './fusion/speaker-sums.ts';
export * from './fusion/model.ts';
export * from './fusion/parse-variant.ts';
export * from './train/checkpoint-bytes.ts';
export { padBatch } from './train/data.ts';
export { argmax, softmax } from './metrics/metrics.ts';
export { decodeSafetensors, SafetensorsError } from './cache/safetensors.ts';
