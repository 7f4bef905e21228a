// Dynamic loss scaling, for training whose activation gradients are stored in binary16
// (--precision f16-storage). The loss gradient is seeded with a scale S, so every activation
// gradient is S times its true value: a small S keeps large gradients under f16's 65504, a large
// S keeps small ones out of its subnormals. Weight gradients are divided by S in f32 before Adam.
// A step whose gradients overflowed anyway is skipped (no Adam update) and S halved; after
// `growthInterval` steps in a row without overflow S doubles. These are PyTorch GradScaler's
// rules (×2 every 2000 good steps, ×½ on overflow), within [2^-24, 2^24], but from S = 1, not
// its 2^16: a statcell loss is a sum over every voxel, not a mean, so its gradients are large
// already (2^16 overflows every model here, and costs a dozen skipped steps to come down from).
// S stays a power of two, so scaling and unscaling are exact in f32: only what f16 overflows or flushes changes.

/** The scaler's whole state, as checkpoints keep it (so a resumed run continues the same scales). */
export interface LossScaleState {
  /** The scale the next step uses. */
  scale: number;
  /** Steps without overflow since the last change of scale. */
  goodSteps: number;
  /** Steps skipped so far because their gradients overflowed: Adam has taken iteration − skipped steps. */
  skipped: number;
}

export const LOSS_SCALE_DEFAULTS = { initial: 1, growthInterval: 2000 };
/** Below f16's smallest subnormal no scale can help: the gradients are not finite at all. */
export const MIN_LOSS_SCALE = 2 ** -24;
/** Growth stops here: a seed beyond f16's range (2^16) times 2^8 overflows any gradient that is not tiny. */
export const MAX_LOSS_SCALE = 2 ** 24;

export class LossScaleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LossScaleError';
  }
}

export class DynamicLossScale {
  state: LossScaleState;

  constructor(
    readonly growthInterval = LOSS_SCALE_DEFAULTS.growthInterval,
    initial = LOSS_SCALE_DEFAULTS.initial,
  ) {
    this.state = { scale: initial, goodSteps: 0, skipped: 0 };
    const bad = badState(this.state) ?? (Number.isInteger(growthInterval) && growthInterval >= 1 ? undefined : `growthInterval must be an integer ≥ 1, got ${growthInterval}`);
    if (bad) throw new RangeError(`loss scale: ${bad}`);
  }

  /**
   * After a step at `state.scale`: whether its gradients were finite (then Adam applies them).
   * Throws once the scale would fall below MIN_LOSS_SCALE.
   */
  update(finite: boolean): boolean {
    const s = this.state;
    if (finite) {
      if (++s.goodSteps >= this.growthInterval) this.state = { ...s, scale: Math.min(s.scale * 2, MAX_LOSS_SCALE), goodSteps: 0 };
      return true;
    }
    const scale = s.scale / 2;
    if (scale < MIN_LOSS_SCALE)
      throw new LossScaleError(`the gradients are not finite even at loss scale 2^${Math.log2(s.scale)}: they overflow f32 or are NaN, which no loss scale can help`);
    this.state = { scale, goodSteps: 0, skipped: s.skipped + 1 };
    return false;
  }

  /** Continues from a checkpoint's state; `where` names it in the error when the state is not one this scaler can reach. */
  restore(state: LossScaleState, where: string): void {
    const bad = badState(state);
    if (bad) throw new LossScaleError(`${where}: ${bad}`);
    this.state = { ...state };
  }
}

/** What is wrong with a state (a field and why), or undefined when it is one the rules reach. */
function badState(s: LossScaleState): string | undefined {
  const powerOfTwo = Number.isFinite(s.scale) && s.scale > 0 && 2 ** Math.round(Math.log2(s.scale)) === s.scale;
  if (!powerOfTwo || s.scale < MIN_LOSS_SCALE || s.scale > MAX_LOSS_SCALE) return `scale must be a power of two in [2^-24, 2^24], got ${s.scale}`;
  if (!Number.isInteger(s.goodSteps) || s.goodSteps < 0) return `goodSteps must be an integer ≥ 0, got ${s.goodSteps}`;
  if (!Number.isInteger(s.skipped) || s.skipped < 0) return `skipped must be an integer ≥ 0, got ${s.skipped}`;
  return undefined;
}
