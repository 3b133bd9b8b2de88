// @emofuse/model: encoders, datasets, the feature cache, the fusion model, training and metrics.

export * from './features.ts';
export * from './io.ts';
export * from './audio/index.ts';
export * from './encoders/index.ts';
export * from './fusion/backend.ts';
export * from './fusion/backend-cpu.ts';
export * from './fusion/backend-wgsl.ts';
export * from './fusion/backend-ort.ts';
export * from './fusion/model.ts';
export * from './metrics/metrics.ts';
export * from './datasets/index.ts';
export * from './train/checkpoint.ts';
export * from './train/data.ts';
export * from './train/schedule.ts';
export * from './train/trainer.ts';
export * from './cache/index.ts';
export * from './predict.ts';
export * from './export/index.ts';
export { createTranscriber, DEFAULT_ASR, type Transcriber } from './encoders/asr.ts';
export { ModelNotFoundError } from './encoders/transformers.ts';
export * from './metrics/confusion-plot.ts';
export * from './fusion/open-backend.ts';
export * from './fusion/parse-variant.ts';
export * from './train/defaults.ts';
export * from './compat.ts';
export * from './eval-report.ts';
export * from './ablation.ts';
