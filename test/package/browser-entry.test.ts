// @emofuse/model/browser is for web pages: bundled for the browser it must import nothing from Node (a `node:` module,
// a Node built-in, or a Node-only package such as onnxruntime-node), so a page's bundler needs no shims. Bundled
// from the sources here (the workspace's `@emofuse/source` condition); test/package/pack.test.ts bundles the same
// entry from the installed tarball's dist/.

import { describe, expect, it } from 'vitest';
import { browserBundleProblems } from './browser-bundle.ts';

describe('@emofuse/model/browser', () => {
  it('bundles for the browser with no Node import (from the sources)', async () => {
    expect(await browserBundleProblems('@emofuse/model/browser', { conditions: ['@emofuse/source'] })).toEqual([]);
  });

  it('the check fails on the Node entry (it can fail)', async () => {
    const problems = await browserBundleProblems('@emofuse/model', { conditions: ['@emofuse/source'] });
    expect(
      problems.some((p) => /node:|onnxruntime-node/.test(p)),
      problems.slice(0, 5).join('\n'),
    ).toBe(true);
  });
});
