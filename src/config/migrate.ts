import { stringify } from "yaml";
import { type ConfigMapping, describeValue, getPath, isMapping } from "./document.js";
import { type ConfigProblem, configProblemsError, throwIfProblems } from "./problems.js";

/**
 * Migration of the original framework's (anemoi-training's) checkpoint flags to
 * `checkpoint.loading`. What anemoi-training does with them (train.py): the checkpoint is
 * `system.input.warm_start` (older: `hardware.paths.warm_start`/`hardware.files.warm_start`)
 * if set, else `<checkpoints>/<fork_run_id or run_id>/last.ckpt`; with `load_weights_only` only
 * the weights are read (non-strictly, or dropping mismatched shapes with `transfer_learning`),
 * otherwise Lightning restores the full training state: a resume, for run_id and fork_run_id
 * alike (a fork only writes to a new run folder). docs/migration.md is the user-facing table.
 */

export interface MigrateOptions {
  /**
   * Where run `runId`'s checkpoint `fileName` is. The default, `${runId}/${fileName}`, is
   * relative to the folder holding the runs' checkpoint folders (anemoi-training's
   * `system.output.checkpoints.root`, formerly `hardware.paths.checkpoints`).
   */
  resolveRunCheckpoint?: (runId: string, fileName: string) => string;
  /** File the document came from, for error messages. */
  file?: string;
}

export interface MigrationResult {
  /** The document with legacy keys removed and `checkpoint` filled in; the input is unchanged. */
  doc: ConfigMapping;
  /** Deprecation messages, each with the YAML that replaces what was migrated. */
  warnings: string[];
}

export type LegacyKind = "flag" | "path" | "names";

export interface LegacyKey {
  path: readonly string[];
  kind: LegacyKind;
  /** What replaces it, for conflict messages. */
  replacement: string;
}

const key = (path: string, kind: LegacyKind, replacement: string): LegacyKey => ({
  path: path.split("."),
  kind,
  replacement,
});

const LOAD_WEIGHTS_ONLY = key("training.load_weights_only", "flag", "checkpoint.loading.type");
const TRANSFER_LEARNING = key("training.transfer_learning", "flag", "checkpoint.loading.type");
const RUN_ID = key("training.run_id", "path", "checkpoint.source");
const FORK_RUN_ID = key("training.fork_run_id", "path", "checkpoint.source");
const RESUME = key("resume_from_checkpoint", "path", "checkpoint.source");
const TRAINING_RESUME = key("training.resume_from_checkpoint", "path", "checkpoint.source");
const WARM_START = key("system.input.warm_start", "path", "checkpoint.source");
const OLD_WARM_START_FILE = key("hardware.files.warm_start", "path", "checkpoint.source");
const OLD_WARM_START_FOLDER = key("hardware.paths.warm_start", "path", "checkpoint.source");
const SUBMODULES_TO_FREEZE = key(
  "training.submodules_to_freeze",
  "names",
  "checkpoint.loading.freeze",
);

/** Every legacy key, in the order messages list them. */
export const LEGACY_KEYS: readonly LegacyKey[] = [
  LOAD_WEIGHTS_ONLY,
  TRANSFER_LEARNING,
  RUN_ID,
  FORK_RUN_ID,
  RESUME,
  TRAINING_RESUME,
  WARM_START,
  OLD_WARM_START_FILE,
  OLD_WARM_START_FOLDER,
  SUBMODULES_TO_FREEZE,
];

const dotted = (k: LegacyKey) => k.path.join(".");

/** Legacy values as found, checked for type. Absent keys are missing from the map. */
interface LegacyValues {
  present: Map<LegacyKey, unknown>;
  flag(k: LegacyKey): boolean | undefined;
  text(k: LegacyKey): string | undefined;
  names(k: LegacyKey): string[] | undefined;
}

function expectedOf(kind: LegacyKind): string {
  if (kind === "flag") return "true or false";
  if (kind === "path") return "a string";
  return "a list of names";
}

function hasValidType(kind: LegacyKind, value: unknown): boolean {
  if (value === null) return true;
  if (kind === "flag") return typeof value === "boolean";
  if (kind === "path") return typeof value === "string";
  return Array.isArray(value) && value.every((v) => typeof v === "string" && v !== "");
}

function readLegacyValues(root: ConfigMapping, problems: ConfigProblem[]): LegacyValues {
  const present = new Map<LegacyKey, unknown>();
  for (const legacy of LEGACY_KEYS) {
    const parent = getPath(root, legacy.path.slice(0, -1));
    const name = legacy.path[legacy.path.length - 1]!;
    if (!isMapping(parent) || !Object.hasOwn(parent, name)) continue;
    const value = parent[name];
    present.set(legacy, value);
    if (!hasValidType(legacy.kind, value)) {
      const quote =
        legacy.kind === "path" && typeof value === "number" ? " (quote it in YAML)" : "";
      problems.push({
        path: dotted(legacy),
        message: `expected ${expectedOf(legacy.kind)} or null, got ${describeValue(value)}${quote}`,
      });
    }
  }
  const valid = (k: LegacyKey) => {
    const value = present.get(k);
    return hasValidType(k.kind, value) ? value : undefined;
  };
  return {
    present,
    flag: (k) => {
      const value = valid(k);
      return typeof value === "boolean" ? value : undefined;
    },
    text: (k) => {
      const value = valid(k);
      return typeof value === "string" && value !== "" ? value : undefined;
    },
    names: (k) => {
      const value = valid(k);
      return Array.isArray(value) && value.length > 0 ? (value as string[]) : undefined;
    },
  };
}

/** Does the key ask for anything? (false, null, '' and [] do not.) */
function isActive(values: LegacyValues, k: LegacyKey): boolean {
  if (k === OLD_WARM_START_FOLDER) {
    // A folder without a file names no checkpoint.
    return values.text(OLD_WARM_START_FILE) !== undefined && values.text(k) !== undefined;
  }
  if (k.kind === "flag") return values.flag(k) === true;
  if (k.kind === "path") return values.text(k) !== undefined;
  return values.names(k) !== undefined;
}

const SOURCE_KEYS = [RESUME, TRAINING_RESUME, WARM_START, OLD_WARM_START_FILE, FORK_RUN_ID, RUN_ID];

function conflicts(
  root: ConfigMapping,
  values: LegacyValues,
  active: readonly LegacyKey[],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const loading = getPath(root, ["checkpoint", "loading"]);
  if (loading != null) {
    for (const k of active) {
      problems.push({
        path: dotted(k),
        message: `legacy key set together with checkpoint.loading, so loadout cannot tell which one you mean (remove ${dotted(k)}; its place is ${k.replacement})`,
      });
    }
    return problems;
  }
  if (values.flag(TRANSFER_LEARNING) === true && values.flag(LOAD_WEIGHTS_ONLY) === false) {
    problems.push({
      path: dotted(TRANSFER_LEARNING),
      message:
        "true conflicts with training.load_weights_only: false: anemoi-training ignored transfer_learning here and resumed the full training state (set load_weights_only: true to transfer weights, or remove transfer_learning to resume)",
    });
  }
  const resume = values.text(RESUME);
  const trainingResume = values.text(TRAINING_RESUME);
  if (resume !== undefined && trainingResume !== undefined && resume !== trainingResume) {
    problems.push({
      path: dotted(TRAINING_RESUME),
      message: `${describeValue(trainingResume)} differs from resume_from_checkpoint ${describeValue(resume)}: keep one`,
    });
  }
  const explicitSources = [
    resume !== undefined || trainingResume !== undefined ? "resume_from_checkpoint" : undefined,
    values.text(WARM_START) !== undefined ? dotted(WARM_START) : undefined,
    values.text(OLD_WARM_START_FILE) !== undefined ? dotted(OLD_WARM_START_FILE) : undefined,
  ].filter((s) => s !== undefined);
  if (explicitSources.length > 1) {
    problems.push({
      path: explicitSources[1]!,
      message: `names a checkpoint, and so does ${explicitSources[0]}: keep one`,
    });
  }
  const runIds = [FORK_RUN_ID, RUN_ID].filter((k) => values.text(k) !== undefined);
  if (explicitSources[0] === "resume_from_checkpoint" && runIds.length > 0) {
    problems.push({
      path: dotted(runIds[0]!),
      message:
        "names a run to resume from, and resume_from_checkpoint names a checkpoint: keep one",
    });
  }
  const source = getPath(root, ["checkpoint", "source"]);
  if (source != null) {
    for (const k of SOURCE_KEYS.filter((s) => isActive(values, s))) {
      problems.push({
        path: dotted(k),
        message: `legacy key names a checkpoint, and so does checkpoint.source: keep checkpoint.source and remove ${dotted(k)}`,
      });
    }
  }
  return problems;
}

/** The checkpoint the legacy keys point at (anemoi-training's precedence), and notes about it. */
function legacySource(
  values: LegacyValues,
  options: MigrateOptions,
  notes: string[],
): string | undefined {
  const resolveRun = options.resolveRunCheckpoint ?? ((runId, file) => `${runId}/${file}`);
  const runId = values.text(RUN_ID);
  const forkId = values.text(FORK_RUN_ID);
  const fromRun = forkId ?? runId;
  const explicit = values.text(RESUME) ?? values.text(TRAINING_RESUME) ?? values.text(WARM_START);
  if (explicit !== undefined) {
    for (const k of [FORK_RUN_ID, RUN_ID].filter((r) => values.text(r) !== undefined)) {
      notes.push(
        `${dotted(k)} '${values.text(k)}' only named the run (the checkpoint comes from the explicit path): loadout does not name runs, so keep the run id in your trainer's own configuration`,
      );
    }
    return explicit;
  }
  const file = values.text(OLD_WARM_START_FILE);
  if (file !== undefined) {
    const folder = values.text(OLD_WARM_START_FOLDER);
    if (folder !== undefined) return `${folder.replace(/\/+$/, "")}/${file}`;
    return fromRun !== undefined ? resolveRun(fromRun, file) : file;
  }
  if (forkId !== undefined && runId !== undefined) {
    notes.push(
      `training.run_id '${runId}' only named the new run (the checkpoint comes from fork_run_id '${forkId}'): loadout does not name runs, so keep the run id in your trainer's own configuration`,
    );
  }
  return fromRun !== undefined ? resolveRun(fromRun, "last.ckpt") : undefined;
}

/** The `checkpoint.loading` section the legacy flags stand for. */
function legacyLoading(values: LegacyValues, hasSource: boolean, notes: string[]): ConfigMapping {
  const loading: ConfigMapping = {};
  const weightsOnly = values.flag(LOAD_WEIGHTS_ONLY);
  if (values.flag(TRANSFER_LEARNING) === true) {
    Object.assign(loading, { type: "transfer_learning", strict: false, skip_mismatched: true });
    if (weightsOnly === undefined) {
      notes.push(
        "training.transfer_learning: migrated to transfer_learning as the flag asks; note that anemoi-training applied it only together with load_weights_only: true",
      );
    }
  } else if (weightsOnly === true) {
    // anemoi-training read weights-only loads with strict=False; keep that behaviour.
    Object.assign(loading, { type: "weights_only", strict: false });
  } else if (hasSource) loading.type = "warm_start";
  const names = values.names(SUBMODULES_TO_FREEZE);
  // anemoi freezes every submodule with that name at any depth: the module itself at the top
  // level, or anywhere below it.
  if (names) loading.freeze = names.flatMap((name) => [name, `*.${name}.*`]);
  return loading;
}

/** A copy of `root` without the key at `path`, dropping mappings the removal leaves empty. */
function withoutPath(root: ConfigMapping, path: readonly string[]): ConfigMapping {
  const chain: ConfigMapping[] = [root];
  for (const segment of path.slice(0, -1)) {
    const next = chain[chain.length - 1]![segment];
    if (!isMapping(next)) return root;
    chain.push(next);
  }
  let node: ConfigMapping = { ...chain[chain.length - 1]! };
  delete node[path[path.length - 1]!];
  for (let i = chain.length - 2; i >= 0; i--) {
    const copy: ConfigMapping = { ...chain[i]! };
    if (Object.keys(node).length === 0) delete copy[path[i]!];
    else copy[path[i]!] = node;
    node = copy;
  }
  return node;
}

function interpolationNotes(values: LegacyValues): string[] {
  const notes: string[] = [];
  for (const [k, value] of values.present) {
    if (typeof value === "string" && value.includes("${")) {
      notes.push(
        `${dotted(k)} is a Hydra interpolation (${describeValue(value)}) that loadout reads as plain text: resolve it first, or set checkpoint.source`,
      );
    }
  }
  return notes;
}

/**
 * Rewrites anemoi-training's legacy checkpoint flags as `checkpoint.source` and
 * `checkpoint.loading`, removes them, and explains each change in a deprecation warning.
 * Conflicting flags (or flags next to an explicit `checkpoint.loading`) throw one ConfigError
 * listing every conflict. A document without legacy keys is returned as it is.
 */
export function migrateLegacyConfig(doc: unknown, options: MigrateOptions = {}): MigrationResult {
  const root = doc ?? {};
  if (!isMapping(root)) {
    const problem = {
      path: "(top level)",
      message: `expected a mapping, got ${describeValue(root)}`,
    };
    throw configProblemsError("CONFIG_INVALID", [problem], options.file);
  }
  const typeProblems: ConfigProblem[] = [];
  const values = readLegacyValues(root, typeProblems);
  if (values.present.size === 0) return { doc: root, warnings: [] };

  const active = LEGACY_KEYS.filter((k) => values.present.has(k) && isActive(values, k));
  const conflictProblems = conflicts(root, values, active);
  const code = conflictProblems.length > 0 ? "CONFIG_LEGACY_CONFLICT" : "CONFIG_INVALID";
  throwIfProblems(code, [...typeProblems, ...conflictProblems], options.file);

  let migrated = root;
  for (const k of values.present.keys()) migrated = withoutPath(migrated, k.path);
  const warnings: string[] = [];
  const inactive = [...values.present].filter(([k]) => !active.includes(k));
  if (active.length > 0) {
    const notes: string[] = [];
    const source = legacySource(values, options, notes);
    const loading = legacyLoading(values, source !== undefined, notes);
    const existing = isMapping(root.checkpoint) ? root.checkpoint : {};
    const checkpoint: ConfigMapping = { ...existing };
    if (source !== undefined) checkpoint.source = source;
    checkpoint.loading = loading;
    migrated = { ...migrated, checkpoint };
    const snippet = stringify({ checkpoint }, { lineWidth: 0 }).trimEnd();
    warnings.push(
      `deprecated: legacy anemoi-training keys (${active.map(dotted).join(", ")}) were migrated; replace them with:\n${snippet}`,
      ...notes,
      ...interpolationNotes(values),
    );
  }
  if (inactive.length > 0) {
    const listed = inactive.map(([k, v]) => `${dotted(k)} (${describeValue(v)})`).join(", ");
    warnings.push(
      `deprecated: removed legacy keys that ask for nothing: ${listed}. Delete them from the configuration.`,
    );
  }
  return { doc: migrated, warnings };
}
