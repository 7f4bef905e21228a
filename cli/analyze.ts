// statcell analyze: the paper's analyses of trained models (statistical-cell.md §4).
// The latent-space analyses (kld, walk, coupling), the drug test and the sweep's feature regression
// register their own subcommands.

import type { Command } from 'commander';
import { registerLatentAnalyses } from './analyze-latent.ts';
import { registerDrugAnalysis } from './analyze-drug.ts';
import { registerFeatureAnalysis } from './analyze-features.ts';

export function registerAnalyze(program: Command): void {
  const analyze = program.command('analyze').description("the paper's analyses of trained models");
  registerLatentAnalyses(analyze);
  registerDrugAnalysis(analyze);
  registerFeatureAnalysis(analyze);
}
