// CPU references, forward and backward, float64 accumulation. The `cpu` training backend runs on these.

export * from './add.ts';
export * from './cross-attention.ts';
export * from './gelu.ts';
export * from './matmul.ts';
export * from './softmax.ts';
export * from './layer-norm.ts';
export * from './dropout.ts';
export * from './mean-pool.ts';
export * from './cross-entropy.ts';
export * from './adamw.ts';
export * from './grad-norm.ts';
export * from './axpy.ts';
export * from './concat-time.ts';
export * from './gate.ts';
export * from './embedding.ts';
