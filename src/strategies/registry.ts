import type { LoadingConfig } from "../config/types.js";
import { ConfigError } from "../errors.js";
import { BUILTIN_POLICIES } from "./builtin.js";
import { type LoadingStrategy, policyStrategy } from "./strategy.js";

export type StrategyFactory = (config: LoadingConfig) => LoadingStrategy;

const factories = new Map<string, StrategyFactory>(
  BUILTIN_POLICIES.map((policy) => [policy.name, () => policyStrategy(policy)]),
);
const builtinNames = new Set(factories.keys());

/**
 * Adds a strategy that configs can name in `checkpoint.loading.type` like a built-in one.
 * Built-in names cannot be replaced.
 */
export function registerStrategy(name: string, factory: StrategyFactory): void {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new ConfigError("BAD_STRATEGY_NAME", `strategy name '${name}' must be snake_case`, {
      hint: "Use lowercase letters, digits and underscores, like 'weights_only'.",
    });
  }
  if (builtinNames.has(name)) {
    throw new ConfigError(
      "BUILTIN_STRATEGY",
      `'${name}' is a built-in strategy and cannot be replaced`,
      {
        hint: "Register yours under another name.",
      },
    );
  }
  factories.set(name, factory);
}

export function unregisterStrategy(name: string): void {
  if (!builtinNames.has(name)) factories.delete(name);
}

/** Names configs may use: the built-ins first, then registered ones. */
export function strategyNames(): string[] {
  return [...factories.keys()];
}

export function createStrategy(config: LoadingConfig): LoadingStrategy {
  const factory = factories.get(config.type);
  if (!factory) {
    throw new ConfigError("UNKNOWN_STRATEGY", `unknown strategy '${config.type}'`, {
      key: "checkpoint.loading.type",
      hint: `Allowed: ${strategyNames().join(", ")}.`,
    });
  }
  return factory(config);
}
