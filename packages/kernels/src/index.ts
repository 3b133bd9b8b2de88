// @emofuse/kernels: the WebGPU runtime, every WGSL kernel's wrapper, and their CPU references.

export * from './runtime/device.ts';
export * from './runtime/gpu.ts';
export * from './runtime/kernel.ts';
export * from './compare.ts';
export * from './random.ts';
export * from './tolerances.ts';
export * from './op.ts';
export * from './op-test.ts';
export * from './self-check.ts';
export * from './ops/index.ts';
export * as ref from './ref/index.ts';
