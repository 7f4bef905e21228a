// statcell web: its subcommands are registered here.

import type { Command } from 'commander';

export function registerWeb(program: Command): void {
  void program;
}
