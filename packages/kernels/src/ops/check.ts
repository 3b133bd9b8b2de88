// Shape checks that run before every dispatch (tfjs's `validateInputs` habit): a wrong shape is a
// thrown KernelError naming the kernel and tensors, never an out-of-bounds read on the GPU.

import { KernelError, type Tensor } from '../runtime/gpu.ts';

export function describeShapes(named: Record<string, Tensor | number | undefined>): string {
  return Object.entries(named)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (typeof v === 'number' ? `${k}=${v}` : `${k}${v!.toString()}`))
    .join(' ');
}

export function expectShape(kernel: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new KernelError(kernel, '', `${name} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`, 'shape');
  }
}

export function expectSize(kernel: string, name: string, t: Tensor, size: number): void {
  if (t.size !== size) {
    throw new KernelError(kernel, '', `${name} must have ${size} elements, got ${t.size} (shape [${t.shape.join(', ')}])`, 'shape');
  }
}

export function expectDistinct(kernel: string, named: Record<string, Tensor>): void {
  const seen = new Map<GPUBuffer, string>();
  for (const [k, t] of Object.entries(named)) {
    const other = seen.get(t.buffer);
    if (other)
      throw new KernelError(
        kernel,
        '',
        `${k} and ${other} are the same buffer; WebGPU cannot bind one buffer as both input and output`,
        'shape',
      );
    seen.set(t.buffer, k);
  }
}

export function expectPositiveInt(kernel: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new KernelError(kernel, '', `${name} must be a positive integer, got ${v}`, 'shape');
}
