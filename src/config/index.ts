/** Loading configuration: YAML documents, overrides, legacy migration, validation, defaults. */
export type { ConfigMapping } from "./document.js";
export {
  type ParseConfigOptions,
  type ParsedConfig,
  parseConfigText,
  parseYamlText,
} from "./load.js";
export {
  LEGACY_KEYS,
  type MigrateOptions,
  type MigrationResult,
  migrateLegacyConfig,
} from "./migrate.js";
export {
  applyOverrides,
  type OverrideOperation,
  type ParsedOverride,
  parseOverride,
} from "./overrides.js";
export { type ConfigProblem, formatProblem } from "./problems.js";
export {
  type CheckResult,
  checkConfigDocument,
  checkLoadingConfig,
  type LoadoutDocument,
  type ResolveOptions,
  resolveConfigDocument,
  resolveLoadingConfig,
} from "./resolve.js";
export {
  BUILTIN_STRATEGIES,
  type BuiltinStrategy,
  LOADING_KEYS,
  LOADING_MODES,
  MISMATCH_POLICIES,
} from "./schema.js";
export { STRATEGY_DEFAULTS, strategyDefaults } from "./strategy-rules.js";
export type { LoadingConfig, LoadoutConfig } from "./types.js";
