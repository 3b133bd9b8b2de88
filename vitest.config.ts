import { defineConfig } from 'vitest/config';

// Shaders are imported as text, exactly as esbuild's `text` loader does for the CLI bundle.
const wgslText = {
  name: 'wgsl-text',
  transform(code: string, id: string) {
    if (!id.endsWith('.wgsl')) return null;
    return { code: `export default ${JSON.stringify(code)};`, map: null };
  },
};

export default defineConfig({
  plugins: [wgslText],
  // Tests run the workspace packages' sources (their exports' `@emofuse/source` condition), not their built dist/;
  // the rest is Vite's default server conditions.
  ssr: { resolve: { conditions: ['@emofuse/source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // One software adapter on a 2-core machine: GPU test files run one at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    globalSetup: ['test/setup/adapter.ts'],
  },
});
