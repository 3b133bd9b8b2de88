// `emofuse cache merge`: joins the partial caches of `extract --shard K/N` into one feature cache.

import type { Command } from 'commander';
import { mergeFeatureCaches } from '@emofuse/model';
import { int, userErrors } from '../options.ts';
import { table, UserError } from '../output.ts';

interface MergeFlags {
  out?: string;
  shardSize?: string;
  json?: boolean;
}

export function registerCache(program: Command): void {
  const cache = program.command('cache').description('feature cache tools (merge the parts of a sharded extraction)');
  cache
    .command('merge')
    .description("join the N partial caches of 'extract --shard K/N' into the cache one process would have written")
    .argument('<parts...>', 'the partial cache folders, or the --out folder the workers shared (its part-K-of-N folders)')
    .option('--out <cache>', 'merged cache folder (default: the one folder given, next to its part-K-of-N folders)')
    .option('--shard-size <n>', "utterances per safetensors shard (default: the parts' --shard-size)")
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      `
Every part must be complete, from the same dataset contents and encoders, and all N must be there.

Examples:
  emofuse extract --dataset emodb --shard 0/2 --out cache/emodb &
  emofuse extract --dataset emodb --shard 1/2 --out cache/emodb; wait
  emofuse cache merge cache/emodb                                  # writes cache/emodb/index.json + shards
  emofuse cache merge nodeA/part-0-of-2 nodeB/part-1-of-2 --out cache/emodb`,
    )
    .action((parts: string[], opts: MergeFlags) => {
      const out = opts.out ?? (parts.length === 1 ? parts[0]! : undefined);
      if (!out) throw new UserError('--out is required when several part folders are given (where the merged cache goes)');
      const shardSize = opts.shardSize === undefined ? undefined : int(opts.shardSize, '--shard-size');
      const r = userErrors(() => mergeFeatureCaches({ parts, out, shardSize }));
      const splits = Object.fromEntries(Object.entries(r.index.splits).map(([k, v]) => [k, v.ids.length]));
      if (opts.json) {
        console.log(
          JSON.stringify(
            { cache: r.cacheDir, parts: r.parts, shards: r.index.shards.length, splits, failures: r.index.failures.length },
            null,
            2,
          ),
        );
        return;
      }
      console.log(
        `merged ${r.parts.length} parts into ${r.cacheDir} (${r.index.shards.length} shards, ${r.index.failures.length} failures)`,
      );
      console.log(table(Object.entries(splits), ['split', 'utterances']));
    });
}
