#!/usr/bin/env node
// Launcher: registers tsx's loader (resolved from this package, wherever the command runs) and
// starts the TypeScript CLI, so `statcell` works on plain Node 20 without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./statcell.ts');
