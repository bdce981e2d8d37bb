import type { Checkpoint } from "../checkpoint/checkpoint.js";
import type { StateDict } from "../checkpoint/state-dict.js";
import { formatPath, getPath, type PathSegment, type TreePath } from "../checkpoint/tree.js";
import { ConfigError } from "../errors.js";
import { isDict, isTuple, type PyValue } from "../formats/pickle/values.js";
import { compileKeyPatterns, patternsMatchingNothing } from "../keys/globs.js";
import { openCheckpointFile } from "../node.js";
import type { DType } from "../tensors/dtype.js";
import { Tensor } from "../tensors/tensor.js";
import type { TensorLike } from "../tensors/tensor-like.js";
import { PyOrderedDict, type WritableValue } from "../writers/torch/python-values.js";
import { formatBytes, formatCount } from "./format.js";
import {
  describeFiles,
  type OutputFormat,
  outputDType,
  outputFormatFor,
  type TensorStreams,
  tensorStreams,
  type WrittenOutput,
  writeSafetensorsOutput,
  writeTorchOutput,
} from "./output.js";

/**
 * `loadout convert IN OUT`: any readable checkpoint to safetensors (one file or Hugging Face
 * shards) or to a PyTorch zip. safetensors output, and torch output with --state-dict-only, hold
 * the model state dict. Torch output otherwise keeps the whole tree (optimizer state, counters,
 * hyperparameters) with the state dict filtered, renamed and converted in place; values torch
 * could only load by running code (opaque objects, globals, numpy arrays) are dropped, with a
 * warning naming each path.
 */

export interface ConvertOptions {
  include?: string[];
  exclude?: string[];
  stripPrefix?: string[];
  dtype?: DType;
  shardSize?: string;
  format?: OutputFormat;
  stateDictOnly?: boolean;
  strict?: boolean;
  allowGlobal?: string[];
}

export interface KeySelection {
  include?: readonly string[] | undefined;
  exclude?: readonly string[] | undefined;
  stripPrefix?: readonly string[] | undefined;
}

/** Paths of dropped values named in the warning at most. */
const DROPPED_SHOWN = 20;

/**
 * Which keys to keep and what to call them: --include then --exclude on the keys as the file
 * has them, then each --strip-prefix in the order given (each removed at most once, so
 * `model. model.` strips two levels). A pattern or prefix that matches no key is an error (a typo
 * must not pass silently), as is a key stripped to nothing or onto another key.
 */
export function selectKeys(keys: readonly string[], selection: KeySelection): Map<string, string> {
  const include = selection.include ?? [];
  const exclude = selection.exclude ?? [];
  for (const [option, patterns] of [
    ["--include", include],
    ["--exclude", exclude],
  ] as const) {
    const unmatched = patternsMatchingNothing(patterns, keys);
    if (unmatched.length > 0) {
      throw new ConfigError(
        "PATTERN_MATCHES_NOTHING",
        `${option} ${unmatched.map((p) => `'${p}'`).join(", ")} matches no key`,
        {
          hint: "Run `loadout inspect` to see the keys; patterns match keys as the file has them.",
        },
      );
    }
  }
  const included = include.length > 0 ? compileKeyPatterns(include) : () => true;
  const excluded = exclude.length > 0 ? compileKeyPatterns(exclude) : () => false;
  const kept = keys.filter((key) => included(key) && !excluded(key));
  const prefixes = selection.stripPrefix ?? [];
  const used = new Set<string>();
  const renamed = new Map<string, string>();
  const byNewName = new Map<string, string>();
  for (const key of kept) {
    let name = key;
    for (const prefix of prefixes) {
      if (prefix !== "" && name.startsWith(prefix)) {
        name = name.slice(prefix.length);
        used.add(prefix);
      }
    }
    if (name === "") {
      throw new ConfigError("EMPTY_KEY", "--strip-prefix leaves nothing of the key", {
        key,
        hint: "Strip a shorter prefix, or --exclude this key.",
      });
    }
    const other = byNewName.get(name);
    if (other !== undefined) {
      throw new ConfigError(
        "KEY_COLLISION",
        `keys '${other}' and '${key}' both become '${name}' after --strip-prefix`,
        { hint: "--exclude one of them, or strip a different prefix." },
      );
    }
    byNewName.set(name, key);
    renamed.set(key, name);
  }
  const unused = prefixes.filter((prefix) => !used.has(prefix));
  if (unused.length > 0) {
    throw new ConfigError(
      "PREFIX_MATCHES_NOTHING",
      `--strip-prefix ${unused.map((p) => `'${p}'`).join(", ")} starts no selected key`,
      { hint: "Run `loadout inspect` to see the keys; prefixes are removed in the order given." },
    );
  }
  return renamed;
}

/** Whether `value` is a scalar, string or bytes: stored by the torch writer as it is. */
function isWritableLeaf(value: PyValue): boolean {
  return (
    value === null ||
    typeof value === "boolean" ||
    typeof value === "number" ||
    typeof value === "bigint" ||
    typeof value === "string" ||
    value instanceof Uint8Array
  );
}

/** Python dict keys the writer can store: scalars, strings, bytes, tuples of those. */
function isWritableKey(key: PyValue): boolean {
  const pending: PyValue[] = [key];
  while (pending.length > 0) {
    const item = pending.pop()!;
    if (isWritableLeaf(item)) continue;
    if (isTuple(item)) pending.push(...item);
    else return false;
  }
  return true;
}

interface CopiedTree {
  value: WritableValue;
  /** Paths (with the class) of values left out. */
  dropped: string[];
}

/** How the model's state dict is written inside the tree. */
interface StateDictRewrite {
  /** The object at the state dict's path (a dict, or a pickled nn.Module). */
  original: PyValue;
  /** Its entries: tensors and, for a dict, the non-tensor extras (`_extra_state`). */
  entries: readonly (readonly [string, PyValue])[];
  rename: ReadonlyMap<string, string>;
  tensor: (tensor: Tensor) => TensorLike;
}

interface CopyTask {
  source: PyValue;
  path: TreePath;
  assign: (value: WritableValue) => void;
  /** Called instead of assign when the value cannot be written. */
  omit: () => void;
}

/** A copy task, or a step to run once the tasks pushed after it are done. */
type Task = CopyTask | (() => void);

/**
 * The checkpoint's tree as the torch writer takes it, iteratively: dicts stay Maps, lists lists,
 * tuples frozen arrays, sets Sets; tensors become `otherTensor(tensor)`, the state dict becomes an
 * OrderedDict of its selected, renamed entries. A container met twice is copied once (shared
 * references stay shared). Values the writer cannot store are dropped: a dict entry is removed,
 * a list or tuple item becomes None (so positions keep their meaning), a set item is left out.
 */
function writableTree(
  root: PyValue,
  stateDict: StateDictRewrite,
  otherTensor: (tensor: Tensor) => TensorLike,
): CopiedTree {
  const copies = new Map<object, WritableValue>();
  const dropped: string[] = [];
  const drop = (value: PyValue, path: TreePath) => {
    const what =
      typeof value === "object" && value !== null && "pyClass" in value
        ? value.pyClass
        : typeof value;
    dropped.push(`${formatPath(path) || "<root>"} (${what})`);
  };

  /** The copy of a container, with the tasks that fill it in document order; undefined if unwritable. */
  const copyContainer = (source: object, path: TreePath): [WritableValue, Task[]] | undefined => {
    if (source === stateDict.original) return copyStateDict(stateDict, path);
    if (source instanceof Tensor) return [otherTensor(source), []];
    if (isDict(source)) {
      const copy = new Map<WritableValue, WritableValue>();
      const tasks: Task[] = [];
      for (const [key, value] of source) {
        const at = [...path, keySegment(key)];
        if (!isWritableKey(key)) {
          drop(key, at);
          continue;
        }
        const k = key as WritableValue;
        copy.set(k, null);
        tasks.push(entryTask(value, at, copy, k));
      }
      return [copy, tasks];
    }
    if (Array.isArray(source)) {
      const copy: WritableValue[] = new Array(source.length).fill(null);
      const tasks: Task[] = source.map((item, i) => ({
        source: item,
        path: [...path, i],
        assign: (v: WritableValue) => (copy[i] = v),
        omit: () => {},
      }));
      // A tuple is frozen once its items are in.
      if (isTuple(source)) tasks.push(() => Object.freeze(copy));
      return [copy, tasks];
    }
    if (source instanceof Set) {
      const copy = new Set<WritableValue>();
      [...source].forEach((item, i) => {
        if (isWritableKey(item)) copy.add(item as WritableValue);
        else drop(item, [...path, i]);
      });
      return [copy, []];
    }
    return undefined;
  };

  const result: { value: WritableValue } = { value: null };
  const stack: Task[] = [
    { source: root, path: [], assign: (v) => (result.value = v), omit: () => {} },
  ];
  for (let task = stack.pop(); task !== undefined; task = stack.pop()) {
    if (typeof task === "function") {
      task();
      continue;
    }
    const { source, path, assign, omit } = task;
    if (isWritableLeaf(source)) {
      assign(source as WritableValue);
      continue;
    }
    const object = source as object;
    const known = copies.get(object);
    if (known !== undefined) {
      assign(known);
      continue;
    }
    const copied = copyContainer(object, path);
    if (!copied) {
      drop(source, path);
      omit();
      continue;
    }
    const [copy, tasks] = copied;
    copies.set(object, copy);
    assign(copy);
    for (let i = tasks.length - 1; i >= 0; i--) stack.push(tasks[i]!);
  }
  return { value: result.value, dropped };
}

/** Copies `value` into `copy[key]`, or removes the key when it cannot be written. */
function entryTask(
  value: PyValue,
  path: TreePath,
  copy: Map<WritableValue, WritableValue>,
  key: WritableValue,
): CopyTask {
  return {
    source: value,
    path,
    assign: (v) => copy.set(key, v),
    omit: () => copy.delete(key),
  };
}

/** The state dict as an OrderedDict of its selected entries under their new names. */
function copyStateDict(stateDict: StateDictRewrite, path: TreePath): [WritableValue, Task[]] {
  const items = new Map<WritableValue, WritableValue>();
  const tasks: Task[] = [];
  for (const [key, value] of stateDict.entries) {
    const name = stateDict.rename.get(key);
    if (name === undefined) continue;
    if (value instanceof Tensor) {
      items.set(name, stateDict.tensor(value));
      continue;
    }
    items.set(name, null);
    tasks.push(entryTask(value, [...path, key], items, name));
  }
  return [new PyOrderedDict(items), tasks];
}

function keySegment(key: PyValue): PathSegment {
  return typeof key === "string" || typeof key === "number" ? key : String(key);
}

export async function runConvertCommand(
  input: string,
  output: string,
  options: ConvertOptions,
  warn: (line: string) => void,
): Promise<string> {
  const format = outputFormatFor(output, options.format);
  if (options.shardSize !== undefined && format !== "safetensors") {
    throw new ConfigError("BAD_OPTION", "--shard-size applies to safetensors output only", {
      hint: "Drop --shard-size, or write .safetensors.",
    });
  }
  const checkpoint = await openCheckpointFile(input, {
    strict: options.strict === true,
    allowGlobals: options.allowGlobal ?? [],
  });
  const streams = tensorStreams("converting");
  try {
    const stateDict = checkpoint.requireStateDict();
    const selection = {
      include: options.include,
      exclude: options.exclude,
      stripPrefix: options.stripPrefix,
    };
    const modelTensor = (key: string, tensor: Tensor) =>
      streams.stream(tensor, outputDType(tensor, options.dtype, key));
    let written: WrittenOutput;
    let tensorCount: number;
    let dropped: string[] = [];
    if (format === "safetensors" || options.stateDictOnly) {
      const rename = selectKeys([...stateDict.tensors.keys()], selection);
      const entries = [...rename].map(
        ([key, name]) => [name, modelTensor(key, stateDict.tensors.get(key)!)] as const,
      );
      tensorCount = entries.length;
      written =
        format === "safetensors"
          ? await writeSafetensorsOutput(output, entries, {
              shardSize: options.shardSize,
              metadata: carriedMetadata(checkpoint),
            })
          : await writeTorchOutput(output, new PyOrderedDict(new Map(entries)));
    } else {
      const tree = wholeTree(checkpoint, stateDict, selection, modelTensor, streams);
      dropped = tree.dropped;
      if (dropped.length > 0) warn(droppedWarning(dropped));
      tensorCount = tree.tensorCount;
      written = await writeTorchOutput(output, tree.value);
    }
    return summary(checkpoint, tensorCount, written, dropped.length);
  } finally {
    streams.stop();
    await checkpoint.close();
  }
}

/**
 * A single safetensors input's `__metadata__`, kept (but `total_size`, which a shard index
 * computes). A sharded input's is merged over its shards' headers and index, so per-file entries
 * would no longer be true of the output: not kept.
 */
function carriedMetadata(checkpoint: Checkpoint): Record<string, string> | undefined {
  if (checkpoint.format !== "safetensors" || !checkpoint.metadata) return undefined;
  const { total_size: _, ...kept } = checkpoint.metadata;
  return kept;
}

interface WholeTree {
  value: WritableValue;
  dropped: string[];
  tensorCount: number;
}

/** The checkpoint's whole tree with its state dict selected, renamed and converted in place. */
function wholeTree(
  checkpoint: Checkpoint,
  stateDict: StateDict,
  selection: KeySelection,
  modelTensor: (key: string, tensor: Tensor) => TensorLike,
  streams: TensorStreams,
): WholeTree {
  const original = getPath(checkpoint.root, stateDict.path) ?? null;
  // A dict keeps its non-tensor extras; a pickled nn.Module becomes its state dict.
  const entries: [string, PyValue][] = isDict(original)
    ? [...original].filter((entry): entry is [string, PyValue] => typeof entry[0] === "string")
    : [...stateDict.tensors];
  const rename = selectKeys(
    entries.map(([key]) => key),
    selection,
  );
  const keyOf = new Map<Tensor, string>(
    entries.flatMap(([k, v]) => (v instanceof Tensor ? [[v, k]] : [])),
  );
  let tensorCount = 0;
  const tree = writableTree(
    checkpoint.root,
    {
      original,
      entries,
      rename,
      tensor: (tensor) => {
        tensorCount++;
        return modelTensor(keyOf.get(tensor) ?? "", tensor);
      },
    },
    (tensor) => {
      tensorCount++;
      return streams.stream(tensor, tensor.dtype);
    },
  );
  return { value: tree.value, dropped: tree.dropped, tensorCount };
}

function droppedWarning(dropped: readonly string[]): string {
  const shown = dropped.slice(0, DROPPED_SHOWN);
  const more = dropped.length > shown.length ? `, and ${dropped.length - shown.length} more` : "";
  return (
    `left out ${formatCount(dropped.length)} value(s) torch could only load by running code ` +
    `(write with Python to keep them): ${shown.join(", ")}${more}`
  );
}

function summary(
  checkpoint: Checkpoint,
  tensors: number,
  written: WrittenOutput,
  dropped: number,
): string {
  const parts = [
    `converted ${checkpoint.name} (${checkpoint.format}): ${formatCount(tensors)} tensors, ` +
      `${formatBytes(written.bytes)} written to ${describeFiles(written.files)}`,
  ];
  if (dropped > 0) parts.push(`${formatCount(dropped)} value(s) left out (see the warning)`);
  if (written.removed.length > 0) {
    parts.push(`removed ${formatCount(written.removed.length)} stale file(s) of the same name`);
  }
  return parts.join("; ");
}
