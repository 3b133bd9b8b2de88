// llm.c's checker, through the kernels package's op-test helper (the same one `emofuse gpu --check` uses):
// |a - ref| <= atol + rtol * |ref|, and on failure the shape, the worst element, the max abs/rel errors and
// the first mismatches. NaN or Inf where the reference is finite always fails.
// Every comparison's max errors are appended to $EMOFUSE_ERROR_LOG (JSONL) when set, for the report.
//
// An op test is then one call per case: `await expectOp(gpu, { name, tol, in, out, run, want })` (see
// packages/kernels/src/op-test.ts): inputs uploaded, outputs NaN-poisoned, outputs compared with `want`.

import { appendFileSync } from 'node:fs';
import {
  compareOutput,
  opReport,
  runOpCase,
  type CloseReport,
  type Gpu,
  type OpCase,
  type OpReport,
  type OutputReport,
  type Tolerance,
} from '@emofuse/kernels';

export type { CloseReport, Tolerance };

function log(name: string, o: OutputReport, tol: Tolerance): void {
  if (!process.env.EMOFUSE_ERROR_LOG) return;
  appendFileSync(
    process.env.EMOFUSE_ERROR_LOG,
    JSON.stringify({ name, shape: o.shape, maxAbs: o.maxAbs, maxRel: o.maxRel, atol: tol.atol, rtol: tol.rtol, ok: o.mismatches === 0 }) +
      '\n',
  );
}

export function expectClose(
  actual: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: Tolerance,
  what: { name: string; shape?: readonly number[] },
): CloseReport {
  const o = compareOutput(what.name, actual, ref, tol, what.shape ?? [ref.length]);
  log(what.name, o, tol);
  const rep = opReport('', tol, [o]);
  if (!rep.ok) throw new Error(rep.message.trimStart());
  return { maxAbs: o.maxAbs, maxRel: o.maxRel, worst: o.worst.at.reduce((i, x, d) => i * o.shape[d]! + x, 0), mismatches: o.mismatches };
}

/** Run one op case on the adapter and fail with the worst element of every output outside tolerance. */
export async function expectOp(gpu: Gpu, c: OpCase): Promise<OpReport> {
  const rep = await runOpCase(gpu, c);
  for (const o of rep.outputs) log(`${c.name} ${o.output}`, o, c.tol);
  if (!rep.ok) throw new Error(rep.message);
  return rep;
}
