// The `emofuse` command. Each command lives in its own file under commands/ and only parses and prints.

import { Command, CommanderError } from 'commander';
import { registerGpu } from './commands/gpu.ts';
import { registerBench } from './commands/bench.ts';
import { registerExtract } from './commands/extract.ts';
import { registerMakeDataset } from './commands/make-dataset.ts';
import { registerTrain } from './commands/train.ts';
import { registerEval } from './commands/eval.ts';
import { registerAblate } from './commands/ablate.ts';
import { registerPredict } from './commands/predict.ts';
import { registerAnalyze } from './commands/analyze.ts';
import { registerExport } from './commands/export.ts';
import { registerCache } from './commands/cache.ts';
import { registerDemo } from './commands/demo.ts';
import { registerQuickstart } from './commands/quickstart.ts';
import { refuseSpecialFiles } from './options.ts';
import { reportError } from './output.ts';

// Output into a pipe whose reader has gone (`emofuse extract --help | head -1`): end quietly, as `yes | head -1` does,
// never with an unhandled 'error' event and its stack trace. The exit code is the command's own where it has one
// (0 after --help), else 141 (128 + SIGPIPE, what shells report for a writer cut off): the work was not finished.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 141);
  });
}

const program = new Command();
program
  .name('emofuse')
  .description(
    'Bimodal (text + audio) emotion classification with attention fusion,\n' +
      'trained and run on hand-written WGSL kernels through WebGPU (Dawn) in Node.',
  )
  .version(typeof EMOFUSE_VERSION === 'string' ? EMOFUSE_VERSION : 'dev', '-V, --version', 'print the emofuse version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  // a FIFO, socket or device where a file is expected would block: refused before any command runs
  .hook('preAction', (_program, command) => refuseSpecialFiles(command))
  .addHelpText(
    'after',
    `
Environment:
  EMOFUSE_ADAPTER   WebGPU adapter: auto (default), vulkan, opengles, ... or 'backend:name'
  EMOFUSE_SYNC=1    wait for errors after every kernel dispatch (pins an error to its kernel)
  EMOFUSE_DEBUG=1   print stack traces of unexpected errors

Start here:
  emofuse quickstart      the whole pipeline on the built-in controlled benchmark (under a minute)
  emofuse gpu --check     which adapter is used, and does every kernel match its CPU reference?`,
  );

registerQuickstart(program);
registerGpu(program);
registerBench(program);
registerMakeDataset(program);
registerExtract(program);
registerTrain(program);
registerEval(program);
registerAblate(program);
registerPredict(program);
registerAnalyze(program);
registerExport(program);
registerCache(program);
registerDemo(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    process.exitCode = reportError(err);
  }
}
