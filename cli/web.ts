// statcell export-web and statcell serve: the browser explorer of trained runs (cli/web-site.ts
// does the work; web/ is the page).

import type { Command } from 'commander';
import { backendOption, checkpointOption, exitOnSignals, int, log } from './options.ts';

const SPLITS = ['train', 'validate', 'test', 'all'];

function runOptions(c: Command): Command {
  c.option('--reference <run>', 'reference model run directory')
    .option('--target <run>', 'target model run directory (either run alone, or both)')
    .option('--data <manifest>', "manifest of the cells shown (default: the run's own)")
    .option('--split <split>', 'cells of this split (train, validate, test or all)', 'test')
    .option('--cells <n>', 'at most this many cells', int, 500)
    .addOption(checkpointOption())
    .addOption(backendOption());
  return c;
}

/** The options both commands check before anything is read or written. */
function checked<T extends { split: string; reference?: string; target?: string }>(o: T, command: string): T & { split: 'train' | 'validate' | 'test' | 'all' } {
  if (!o.reference && !o.target) throw new Error(`${command}: give --reference <run>, --target <run>, or both`);
  if (!SPLITS.includes(o.split)) throw new Error(`--split ${o.split}: expected ${SPLITS.join(', ')}`);
  return o as T & { split: 'train' | 'validate' | 'test' | 'all' };
}

export function registerWeb(program: Command): void {
  runOptions(program.command('export-web').description('write the browser explorer of trained runs as a static site (page, model sources, weights without optimizer state, embeddings, cells)'))
    .requiredOption('--out <dir>', 'site folder')
    .action(async (o) => {
      const { backendFor } = await import('./common.ts');
      const { exportWeb } = await import('./web-site.ts');
      const c = checked(o, 'export-web');
      exitOnSignals('export-web');
      await exportWeb(c, await backendFor(o.backend, log), log);
      log(`serve ${o.out} with any static server (python3 -m http.server -d ${o.out}); Wasm threads need the COOP/COEP headers that statcell serve sends`);
    });

  runOptions(program.command('serve').description('serve the browser explorer of trained runs on localhost (COOP/COEP headers; no computation on the server)'))
    .option('--port <n>', 'port (0: any free one)', int, 8080)
    .action(async (o) => {
      const { backendFor } = await import('./common.ts');
      const { serveWeb } = await import('./web-site.ts');
      const c = checked(o, 'serve');
      // Exit on these (a closed terminal sends SIGHUP) whether exporting or serving: the exit
      // removes the temporary site, and open browser connections do not hold the process.
      // A server stopped by the user ends 0; an export cut short ends as an interrupted train does (130/143/129).
      let serving = false;
      for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) process.on(signal, () => process.exit(serving ? 0 : code));
      const { url } = await serveWeb(c, await backendFor(o.backend, log), log);
      serving = true;
      log(`explorer at ${url} (Ctrl-C stops)`);
    });
}
