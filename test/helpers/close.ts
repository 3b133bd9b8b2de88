// llm.c's checker: |a - ref| <= atol + rtol * |ref|, and on failure the shape, the worst element, the max
// abs/rel errors and the first mismatches. NaN or Inf where the reference is finite always fails.
// Every comparison's max errors are appended to $EMOFUSE_ERROR_LOG (JSONL) when set, for the report.

import { appendFileSync } from 'node:fs';
import { compareArrays, isClose, type CloseReport, type Tolerance } from '@emofuse/kernels';

export type { CloseReport, Tolerance };

function unravel(i: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]!);
    i = Math.floor(i / shape[d]!);
  }
  return `[${idx.join(', ')}]`;
}

export function expectClose(
  actual: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: Tolerance,
  what: { name: string; shape?: readonly number[] },
): CloseReport {
  const shape = what.shape ?? [ref.length];
  if (actual.length !== ref.length) throw new Error(`${what.name}: ${actual.length} values, reference has ${ref.length}`);
  const rep = compareArrays(actual, ref, tol);
  if (process.env.EMOFUSE_ERROR_LOG) {
    appendFileSync(
      process.env.EMOFUSE_ERROR_LOG,
      JSON.stringify({ name: what.name, shape, maxAbs: rep.maxAbs, maxRel: rep.maxRel, atol: tol.atol, rtol: tol.rtol, ok: rep.mismatches === 0 }) + '\n',
    );
  }
  if (rep.mismatches) {
    const lines: string[] = [];
    for (let i = 0, shown = 0; i < ref.length && shown < 8; i++) {
      const a = actual[i]!;
      const r = ref[i]!;
      if (!isClose(a, r, tol)) {
        lines.push(`  at ${unravel(i, shape)}: got ${a}, expected ${r} (diff ${Math.abs(a - r).toExponential(3)})`);
        shown++;
      }
    }
    throw new Error(
      `${what.name} [${shape.join(', ')}]: ${rep.mismatches} of ${ref.length} elements outside atol=${tol.atol} rtol=${tol.rtol}\n` +
        `  max abs err ${rep.maxAbs.toExponential(3)}, max rel err ${rep.maxRel.toExponential(3)}, worst at ${unravel(rep.worst, shape)}: ` +
        `got ${actual[rep.worst]}, expected ${ref[rep.worst]}\n` +
        `first mismatches:\n${lines.join('\n')}`,
    );
  }
  return rep;
}
