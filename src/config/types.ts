/** The resolved `checkpoint.loading` configuration: every field present, defaults applied per strategy. */
export interface LoadingConfig {
  /** Strategy name: weights_only, transfer_learning, warm_start, cold_start, or a registered one. */
  type: string;
  /** Any missing or unexpected key, or shape mismatch, fails the load. */
  strict: boolean;
  /** A shape mismatch is skipped and reported (same as `mismatch: skip`). */
  skip_mismatched: boolean;
  /** What to do with a tensor whose shape differs: skip it, fail, or copy the overlapping block. */
  mismatch: "skip" | "error" | "overlap";
  /** Freeze every parameter that was loaded. */
  freeze_loaded: boolean;
  /**
   * Parameters to freeze after the load, whether loaded or not (every strategy). An entry is a
   * glob (`*`, `?`, `[...]`, matched like include/exclude) or a dotted module path that freezes
   * the parameter of that name and every parameter under `entry.`.
   */
  freeze: string[];
  /** Dotted prefixes or globs of parameters that keep the target's own initialisation (cold_start). */
  reset_layers: string[];
  /** Explicit renames applied to source keys before matching: regex → replacement. */
  key_map: { pattern: string; replacement: string }[];
  /** Only source keys matching one of these globs are considered (all when empty). */
  include: string[];
  /** Source keys matching any of these globs are ignored. */
  exclude: string[];
  /**
   * transactional: stage every value, then commit all-or-nothing (one extra copy of what loads).
   * in_place: validate everything, then read straight into the model's arrays (no extra copy).
   */
  mode: "transactional" | "in_place";
}

/** The whole configuration document loadout reads (other top-level keys are left alone). */
export interface LoadoutConfig {
  checkpoint: {
    /** Checkpoint to load, when given in the config. */
    source?: string;
    loading: LoadingConfig;
  };
}
