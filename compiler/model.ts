// What the compiler hands the runtime for one model: its parameters and state with their
// initialisers and checkpoint names, and one graph per entry point (encode, decode, generate)
// and for the training step, built for a given batch size.

import type { DiagnosticError, MessageArgs } from '../dsl/diagnostics.ts';
import type { Shape } from '../kernels/types.ts';
import type { Program } from '../runtime/program.ts';
import type { Graph } from './ir.ts';
import type { Precision } from './precision.ts';

/** How a tensor starts (statistical-cell.md §1.6). */
export type Init =
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'constant'; value: number }
  /** N(0, 1) then L2-normalised: spectral norm's u. */
  | { kind: 'unit_vector' };

export interface TensorSpec {
  /** Checkpoint name, e.g. `enc.down0.conv1.weight` (as in shared/fixtures/README.md). */
  name: string;
  shape: Shape;
  /** Trainable parameter, or persistent state (BatchNorm running statistics, spectral norm's u). */
  kind: 'param' | 'state';
  init: Init;
  /** The block instance it belongs to, for per-block parameter counts (e.g. `enc.down4`). */
  owner: string;
}

/** A scalar the host computes each step from the iteration (e.g. the KL warm-up β_t), fed as a [1] input. */
export interface HostScalar {
  name: string;
  at(iteration: number): number;
}

export interface EntryGraph {
  graph: Graph;
  /** Data inputs the caller feeds (x, ref, cls, z …), with their shapes. */
  inputs: { name: string; shape: Shape }[];
  /** Outputs in declaration order. */
  outputs: string[];
  hostScalars: HostScalar[];
  /** Every layer application, in order: its instance path, output shape and parameters. */
  layers?: { path: string; layer: string; output: readonly number[]; params: number }[];
}

export interface TrainGraph extends EntryGraph {
  /** Metrics the step reports (`report recon, kl, loss`), each a [1] output. */
  metrics: string[];
  /** Adam moments live in the store as `adam.m.<param>` / `adam.v.<param>`. */
  optimizer: { kind: 'adam'; lr: number; beta1: number; beta2: number; eps: number };
}

/**
 * What a model input stands for, so that tools can feed it from data: the image the model
 * reconstructs and the reference image it is conditioned on (each with the names of its
 * channels: `membrane`, `dna`, `structure`), or the one-hot label (over `classes` names).
 */
export type InputRole = { kind: 'image' | 'reference'; channels: string[] } | { kind: 'label'; classes: number };

export interface ModelInput {
  name: string;
  /** The shape of one item (without the batch axis). */
  itemShape: number[];
  role?: InputRole;
}

/** The entry points tools call by role, and the contract each role keeps (checked at compile time). */
export interface EntryRoles {
  /** Image (and conditions) → the posterior's mean and log-variance: the embedding is `mean`. */
  encode?: { entry: string; mean: string; logvar: string };
  /** A latent code (the input named `latent`) and the conditions → the image (`output`). */
  decode?: { entry: string; latent: string; output: string };
  /** The conditions alone → an image from z ~ N(0, I) (`output`). */
  generate?: { entry: string; output: string };
}

export interface CompiledModel {
  name: string;
  /**
   * The model's source text (all files, each headed `# file: <name>`) and its SHA-256, kept in
   * checkpoints. Files are named relative to the entry file's folder, so neither depends on
   * where the files lie.
   */
  source: string;
  sourceHash: string;
  /**
   * A model compiled from .vae files: their texts by those relative names, and the entry's
   * name among them, enough to compile it again (compileModel(files, entryFile, { overrides })).
   */
  files?: Record<string, string>;
  entryFile?: string;
  /** Parameter values after overrides, for the record. */
  config: Record<string, unknown>;
  tensors: TensorSpec[];
  /** Builds an entry point's graph for a batch size (`encode`, `decode`, `generate`, …). */
  entry(name: string, batch: number): EntryGraph;
  entryNames: string[];
  /** The model's inputs (those whose guards hold), with their roles. */
  inputs: ModelInput[];
  roles: EntryRoles;
  /**
   * The training step's `evaluate` values, per cell ([B] each): the first is the ELBO (higher is
   * better), the others its parts. Undefined when the model declares none.
   */
  evaluation?: string[];
  /**
   * A graph and its lowered Program, built once and shared: `train`, `accumulate:<k>` (one of k
   * micro-batches), `apply` (Adam on accumulated gradients), `gradient-check` (their sum, for loss
   * scaling), `evaluate`, or an entry's name.
   * `fused` (default true) runs the elementwise fusion pass first; `precision` 'f16-storage'
   * rounds every activation to binary16 (compiler/precision.ts; default 'f32').
   */
  program(name: string, batch: number, fused?: boolean, precision?: Precision): { graph: EntryGraph | TrainGraph; program: Program };
  /** The training step in evaluation mode (running statistics, one draw of its noise), whose outputs are `evaluation`. */
  evaluateStep(batch: number): EntryGraph;
  /**
   * A diagnostic (SC5001/SC5002) located at the model's input `at` (or at the model when none),
   * for tools that need what the model does not declare or data that do not fit it.
   */
  error<C extends 'SC5001' | 'SC5002'>(code: C, args: MessageArgs<C>, opts?: { at?: string; notes?: string[] }): DiagnosticError;
  /**
   * Builds the training step for a batch size. With `accumulate` = k it is one micro-batch of k:
   * gradients / k are added to state tensors `grad.<param>` instead of an Adam step.
   */
  trainStep(batch: number, accumulate?: number): TrainGraph;
  /** Adam on the accumulated `grad.<param>` tensors, which it then zeroes (micro-batching). */
  applyStep?(): EntryGraph;
}
