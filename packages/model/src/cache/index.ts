export * from './feature-cache.ts';
export * from './extract.ts';
export * from './merge.ts';
export * from './safetensors.ts';
export * from './float16.ts';
