/** Injected by esbuild from packages/cli/package.json (see build.mjs). */
declare const EMOFUSE_VERSION: string;
