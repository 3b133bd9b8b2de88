// The `process` the model package's settings read in the page (esbuild injects it into the bundle): local assets
// and models are the demo server's /assets and /models, and nothing is downloaded from a hub. No `versions.node`,
// so the kernels' runtime and transformers.js know they are in a browser.
export const process = {
  env: { EMOFUSE_ASSETS: '/assets', EMOFUSE_MODELS: '/models', EMOFUSE_CACHE: '/cache', EMOFUSE_OFFLINE: '1' } as Record<
    string,
    string | undefined
  >,
  cwd: () => '/',
  pid: 0,
  platform: 'browser',
  versions: {} as Record<string, string | undefined>,
};
