// statcell sweep: its subcommands are registered here.

import type { Command } from 'commander';

export function registerSweep(program: Command): void {
  void program;
}
