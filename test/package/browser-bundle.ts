// Bundles a module specifier for the browser (esbuild, platform=browser) and lists what it imports from Node.

import { build, type Metafile } from 'esbuild';

/** Every import the bundle could not take in (esbuild fails on a Node built-in under platform=browser: reported too). */
export async function browserBundleProblems(entry: string, options: { conditions?: string[]; from?: string } = {}): Promise<string[]> {
  let metafile: Metafile;
  try {
    ({ metafile } = await build({
      stdin: { contents: `export * from '${entry}';`, resolveDir: options.from ?? process.cwd(), loader: 'ts' },
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'chrome120',
      metafile: true,
      logLevel: 'silent',
      loader: { '.wgsl': 'text' },
      conditions: options.conditions ?? [],
    }));
  } catch (err) {
    return ((err as { errors?: { text: string; location?: { file: string } | null }[] }).errors ?? [{ text: String(err) }]).map(
      (e) => `${e.location?.file ?? '?'}: ${e.text}`,
    );
  }
  return Object.entries(metafile.inputs).flatMap(([file, i]) =>
    i.imports.filter((x) => x.external || x.path.startsWith('node:')).map((x) => `${file} imports ${x.path}`),
  );
}
