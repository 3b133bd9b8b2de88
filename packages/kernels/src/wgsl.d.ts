// `.wgsl` files are imported as their text: esbuild's `text` loader in the CLI bundle,
// the `wgsl-text` plugin in vitest.config.ts for tests.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
