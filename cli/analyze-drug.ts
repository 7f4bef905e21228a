// statcell analyze: subcommands registered here.

import type { Command } from 'commander';

export function registerDrugAnalysis(analyze: Command): void {
  void analyze;
}
