// The gate fusion variant's mix: out = g x + (1 - g) y with g = sigmoid(s), elementwise; backward gives
// ds, dx, dy (overwritten). See shaders/gate.*.wgsl.

import fwdSource from '../../../../shaders/gate.fwd.wgsl';
import bwdSource from '../../../../shaders/gate.bwd.wgsl';
import type { Op } from '../op.ts';
import { caseCheck } from '../op-test.ts';
import * as ref from '../ref/gate.ts';
import type { Gpu, Tensor } from '../runtime/gpu.ts';
import type { KernelDef } from '../runtime/kernel.ts';
import { TOL } from '../tolerances.ts';
import { expectDistinct, expectSize } from './check.ts';

const WG = 256;

export const gateForwardKernel: KernelDef = {
  name: 'gate.fwd',
  source: fwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 's', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'out', access: 'read_write' },
  ],
  params: [['n', 'u32']],
  overrides: { WG },
  foldable: true,
};

export const gateBackwardKernel: KernelDef = {
  name: 'gate.bwd',
  source: bwdSource,
  entryPoint: 'main',
  bindings: [
    { name: 's', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'read' },
    { name: 'dout', access: 'read' },
    { name: 'ds', access: 'read_write' },
    { name: 'dx', access: 'read_write' },
    { name: 'dy', access: 'read_write' },
  ],
  params: [['n', 'u32']],
  overrides: { WG },
  foldable: true,
};

/** out = sigmoid(s) x + (1 - sigmoid(s)) y; s, x, y, out the same size. */
export async function gateForward(gpu: Gpu, s: Tensor, x: Tensor, y: Tensor, out: Tensor): Promise<void> {
  const k = gateForwardKernel.name;
  for (const [name, t] of Object.entries({ x, y, out })) expectSize(k, name, t, s.size);
  expectDistinct(k, { s, out });
  expectDistinct(k, { x, out });
  expectDistinct(k, { y, out });
  await gpu.dispatch(gateForwardKernel, {
    tensors: [s, x, y, out],
    params: { n: out.size },
    grid: [Math.ceil(out.size / WG)],
    shapes: `s${s}`,
  });
}

/** ds, dx, dy of gateForward from dout (overwritten). */
export async function gateBackward(
  gpu: Gpu,
  s: Tensor,
  x: Tensor,
  y: Tensor,
  dout: Tensor,
  ds: Tensor,
  dx: Tensor,
  dy: Tensor,
): Promise<void> {
  const k = gateBackwardKernel.name;
  for (const [name, t] of Object.entries({ x, y, dout, ds, dx, dy })) expectSize(k, name, t, s.size);
  const outs = { ds, dx, dy };
  for (const [o, ot] of Object.entries(outs))
    for (const [i, it] of Object.entries({ s, x, y, dout })) expectDistinct(k, { [i]: it, [o]: ot });
  expectDistinct(k, outs);
  await gpu.dispatch(gateBackwardKernel, {
    tensors: [s, x, y, dout, ds, dx, dy],
    params: { n: dout.size },
    grid: [Math.ceil(dout.size / WG)],
    shapes: `s${s}`,
  });
}

export const gateOp: Op = {
  name: 'gate',
  kernels: [gateForwardKernel, gateBackwardKernel],
  wrappers: { gateForward, gateBackward },
  checks: [
    caseCheck('gate fwd+bwd [37, 13]', TOL.gate, (gpu, input) => {
      const n = 37 * 13;
      const ss = input(n, 95).map((v) => v * 15); // sigmoid saturates at both ends
      const [xs, ys, douts] = [input(n, 96), input(n, 97), input(n, 98)];
      return {
        in: { s: ss, x: xs, y: ys, dout: douts },
        out: { out: [n], ds: [n], dx: [n], dy: [n] },
        run: async (t) => {
          await gateForward(gpu, t.s!, t.x!, t.y!, t.out!);
          await gateBackward(gpu, t.s!, t.x!, t.y!, t.dout!, t.ds!, t.dx!, t.dy!);
        },
        want: () => ({ out: ref.gateForward(ss, xs, ys), ...ref.gateBackward(ss, xs, ys, douts) }),
      };
    }),
  ],
};
