// statcell analyze: its subcommands are registered here.

import type { Command } from 'commander';

export function registerAnalyze(program: Command): void {
  void program;
}
