// The README's main command: the whole pipeline on the built-in controlled benchmark, then run again, when
// every step must resume from what the first run left instead of starting over.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = `${root}packages/cli/bin/emofuse.js`;
const out = mkdtempSync(join(tmpdir(), 'emofuse-quickstart-'));

beforeAll(async () => {
  await run(process.execPath, [`${root}packages/cli/build.mjs`]);
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('emofuse quickstart', () => {
  it('makes the dataset, extracts, trains on the wgsl kernels and evaluates; a second run resumes', async () => {
    const first = await run(process.execPath, [bin, 'quickstart', '--out', out, '--epochs', '2'], { timeout: 300_000 });
    expect(first.stdout).toMatch(/== 4\/4 evaluate/);
    expect(first.stdout).toMatch(/quickstart done/);
    const metrics = JSON.parse(readFileSync(join(out, 'run', 'eval-test', 'metrics.json'), 'utf8'));
    expect(metrics.split).toBe('test');
    expect(metrics.n).toBeGreaterThan(50); // the controlled benchmark's test split: speakers unseen in training
    expect(metrics.weightedF1).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, 'run', 'eval-test', 'confusion.png'))).toBe(true);

    const second = await run(process.execPath, [bin, 'quickstart', '--out', out, '--epochs', '2'], { timeout: 300_000 });
    expect(second.stdout).toMatch(/train .*--resume/);
    expect(second.stdout).toMatch(/quickstart done/);
  });
});
