import { parseDocument } from "yaml";
import { ConfigError } from "../errors.js";
import { describeValue, isMapping } from "./document.js";
import { type MigrateOptions, migrateLegacyConfig } from "./migrate.js";
import { applyOverrides } from "./overrides.js";
import { configProblemsError } from "./problems.js";
import { type LoadoutDocument, type ResolveOptions, resolveConfigDocument } from "./resolve.js";

/**
 * The configuration pipeline, from text to a resolved config: YAML → overrides → legacy
 * migration → validation → per-strategy defaults. Runs anywhere (no file system): reading
 * files is load-file.ts's job.
 */

export interface ParseConfigOptions extends ResolveOptions, MigrateOptions {
  /** Hydra-style overrides applied after parsing (see overrides.ts). */
  overrides?: readonly string[];
}

export interface ParsedConfig {
  /** The resolved document: `checkpoint` complete, other top-level keys as written. */
  config: LoadoutDocument;
  /** Deprecation and YAML warnings, for the caller to show. */
  warnings: string[];
}

/** Aliases expand to at most this many nodes' worth (the yaml package's guard against "billion laughs"). */
const MAX_ALIAS_COUNT = 100;

interface YamlProblem {
  message: string;
  linePos?: [{ line: number; col: number }, ...unknown[]] | undefined;
}

/** `line 3, column 5: message` from a yaml error or warning (its first line, without the excerpt). */
function describeYamlProblem(problem: YamlProblem): string {
  const firstLine = problem.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
  const position = problem.linePos?.[0];
  return position ? `line ${position.line}, column ${position.col}: ${firstLine}` : firstLine;
}

/** Parses YAML text into plain data; syntax errors name the file, line and column. */
export function parseYamlText(text: string, file?: string): { data: unknown; warnings: string[] } {
  const where = file ?? "configuration";
  // The yaml parser recurses on nesting and reports a stack overflow as an error of the document.
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.some((e) => e.message.includes("call stack"))) {
    throw new ConfigError("CONFIG_YAML_SYNTAX", "YAML document is nested too deeply to parse", {
      file,
      hint: "A configuration needs a few levels, not hundreds.",
    });
  }
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => describeYamlProblem(e as YamlProblem));
    throw new ConfigError("CONFIG_YAML_SYNTAX", `YAML syntax error at ${lines.join("\n")}`, {
      file,
      hint: "Fix the YAML at that position.",
    });
  }
  const warnings = doc.warnings.map(
    (w) => `${where}: YAML ${describeYamlProblem(w as YamlProblem)}`,
  );
  try {
    return { data: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), warnings };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const what = /alias/i.test(reason)
      ? "YAML aliases expand too far or cannot be resolved"
      : "YAML document could not be converted to data";
    throw new ConfigError("CONFIG_YAML_SYNTAX", what, { file, cause: error, hint: reason });
  }
}

/**
 * Parses a configuration document and resolves it. A document without `checkpoint.loading`
 * resolves only when `defaultType` is given. Throws ConfigError: CONFIG_YAML_SYNTAX,
 * CONFIG_OVERRIDE, CONFIG_LEGACY_CONFLICT or CONFIG_INVALID.
 */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): ParsedConfig {
  const { data, warnings } = parseYamlText(text, options.file);
  if (data != null && !isMapping(data)) {
    throw configProblemsError(
      "CONFIG_INVALID",
      [
        {
          path: "(top level)",
          message: `expected a mapping of keys to values, got ${describeValue(data)}`,
        },
      ],
      options.file,
    );
  }
  const overridden = applyOverrides(data, options.overrides ?? []);
  const migrated = migrateLegacyConfig(overridden, options);
  const config = resolveConfigDocument(migrated.doc, options);
  return { config, warnings: [...warnings, ...migrated.warnings] };
}
