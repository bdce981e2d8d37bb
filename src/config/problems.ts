import { ConfigError } from "../errors.js";

/**
 * One thing wrong with a configuration. Checks collect every problem they find so that the user
 * fixes them all in one round instead of one per run.
 */
export interface ConfigProblem {
  /** Dotted key the problem concerns (`checkpoint.loading.type`), or the override as written. */
  path: string;
  /** What is wrong and what to do, without the path. */
  message: string;
}

/** A problem as one line: `checkpoint.loading.type: 'x' is not a strategy (...)`. */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.path}: ${problem.message}`;
}

/**
 * One ConfigError for all the problems, one per line, then a summary line (which the base class
 * ends with the file name). With a single problem the message is just that line.
 */
export function configProblemsError(
  code: string,
  problems: readonly ConfigProblem[],
  file?: string,
): ConfigError {
  if (problems.length === 1) {
    const [only] = problems;
    return new ConfigError(code, formatProblem(only!), { file });
  }
  // The summary is the headline (the file name follows it), then one problem per line.
  const lines = problems.map(formatProblem).join("\n");
  return new ConfigError(code, `${problems.length} problems in the configuration\n${lines}`, {
    file,
  });
}

/** Throws a ConfigError listing `problems`, if there are any. */
export function throwIfProblems(
  code: string,
  problems: readonly ConfigProblem[],
  file?: string,
): void {
  if (problems.length > 0) throw configProblemsError(code, problems, file);
}

/**
 * A key path as messages show it: dotted names (`checkpoint.loading.type`), list indices and
 * keys that are not plain names in brackets (`key_map[0]`, `key_map["^backbone\\."]`).
 */
export function formatPath(segments: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of segments) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z_][\w-]*$/.test(segment)) {
      text += text === "" ? segment : `.${segment}`;
    } else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}
