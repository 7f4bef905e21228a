// statcell analyze: subcommands registered here.

import type { Command } from 'commander';

export function registerLatentAnalyses(analyze: Command): void {
  void analyze;
}
