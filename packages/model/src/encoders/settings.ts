// emofuse's model settings, mirroring transformers.js `env`: where local models live, whether remote downloads
// are allowed, and where downloads are cached. Read from the environment once; code may change them.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder whose package.json declares workspaces), found from this file or the bundle. */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).workspaces) return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v);
/** A folder setting from the environment; set but empty (`EMOFUSE_MODELS= emofuse ...`) counts as unset, not as the working folder. */
export const envFolder = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v;
};
/** The repository root: where the shipped assets (packages/model/assets) are found from the sources or the bundle. */
export const repoRoot = findRepoRoot();

export const modelSettings = {
  /** EMOFUSE_MODELS: folder of local models in the transformers.js layout (<folder>/<org>/<name>/onnx/model.onnx). */
  modelsDir: resolve(envFolder('EMOFUSE_MODELS') ?? join(repoRoot, 'models')),
  /** EMOFUSE_OFFLINE=1: never download; a missing model is an error naming the folder searched. */
  offline: truthy(process.env.EMOFUSE_OFFLINE) || truthy(process.env.HF_HUB_OFFLINE),
  /** EMOFUSE_CACHE: where transformers.js keeps downloaded models. */
  cacheDir: resolve(envFolder('EMOFUSE_CACHE') ?? join(homedir(), '.cache', 'emofuse')),
  /** EMOFUSE_ASSETS: the offline assets (BERT tokenizer, AST preprocessor config, EmoDB, MELD text). */
  assetsDir: resolve(envFolder('EMOFUSE_ASSETS') ?? join(repoRoot, '..', 'shared', 'assets')),
};
