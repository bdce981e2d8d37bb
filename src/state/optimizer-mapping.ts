import { formatPath } from "../checkpoint/tree.js";
import { LoadError } from "../errors.js";
import type { ParameterInfo } from "../targets/types.js";
import { formatShape, sameShape } from "../tensors/shape.js";
import type { ParsedOptimizerState } from "./torch-optimizer.js";

/**
 * Naming an optimizer's positions. PyTorch's optimizer state knows parameters only by position
 * (the order they were given to the optimizer), so a state can be applied to a model only once
 * every position has a target parameter name. Three ways, in order of trust:
 *  1. `param_names` in every param group (source names, resolved through the model key match);
 *  2. loadout's record `param_order` (the same, written by loadout);
 *  3. the parameter order: the source state dict's keys in order, restricted to those whose
 *     target is a parameter (not a buffer), one per position, checked by count and by the shape
 *     of every state tensor.
 * Any doubt is a LoadError listing what differs. Never a guess.
 */

export interface OptimizerMappingOptions {
  /** The source state dict's keys in order (undefined when unknown). */
  sourceParamOrder: readonly string[] | undefined;
  /** The target parameter a source key was matched to, if any (from the model key match). */
  toTarget: (sourceKey: string) => string | undefined;
  /** The target model's parameters and buffers. */
  targetParams: readonly ParameterInfo[];
  /**
   * The shape a target parameter's optimizer state has in the checkpoint, when it differs from
   * the target's own (a layout-mapping stage transposed the weights; the moments follow later).
   */
  checkpointShapeOf?: (target: string) => readonly number[] | undefined;
  /** loadout's record `param_order` (FoundOptimizerState.paramOrder), when the file has one. */
  loadoutParamOrder?: readonly string[];
}

export interface OptimizerMapping {
  mapping: "param_names" | "parameter_order" | "loadout";
  /** Target parameter name of every optimizer position. */
  byIndex: Map<number, string>;
}

/** Problems listed in one error at most; the rest are counted. */
const MAX_LISTED = 10;

/** Buffers by name: never given to an optimizer. */
const BUFFER_NAMES = /(^|\.)(running_mean|running_var|num_batches_tracked)$/;

const HINT =
  "loadout maps optimizer state only when it is certain. Save the checkpoint with param_names " +
  "(build the optimizer from model.named_parameters(); recent PyTorch records them) or with " +
  "loadout's writer, or use a strategy that resets the optimizer (weights_only, cold_start).";

function refuse(code: string, what: string, problems: string[], path: string): LoadError {
  const listed = problems.slice(0, MAX_LISTED).join("; ");
  const more = problems.length > MAX_LISTED ? `; and ${problems.length - MAX_LISTED} more` : "";
  return new LoadError(code, `${what}: ${listed}${more}`, { key: path, hint: HINT });
}

export function mapOptimizerToNames(
  parsed: ParsedOptimizerState,
  options: OptimizerMappingOptions,
): OptimizerMapping {
  const path = formatPath(parsed.path);
  const positions = parsed.groups.flatMap((group) => group.indices);
  const named = parsed.groups.filter((group) => group.paramNames !== undefined);
  if (named.length > 0 && named.length < parsed.groups.length) {
    throw refuse(
      "OPTIMIZER_MAPPING",
      "cannot name the optimizer's parameters",
      [`${named.length} of ${parsed.groups.length} param groups record param_names`],
      path,
    );
  }
  let result: OptimizerMapping;
  if (named.length > 0) {
    const names = parsed.groups.flatMap((group) => group.paramNames!);
    result = { mapping: "param_names", byIndex: byNames(positions, names, options, path) };
  } else if (options.loadoutParamOrder) {
    const names = options.loadoutParamOrder;
    if (names.length !== positions.length) {
      throw refuse(
        "OPTIMIZER_COUNT_MISMATCH",
        "cannot name the optimizer's parameters",
        [
          `loadout's param_order has ${names.length} names for ${positions.length} optimizer parameters`,
        ],
        path,
      );
    }
    result = { mapping: "loadout", byIndex: byNames(positions, names, options, path) };
  } else {
    result = { mapping: "parameter_order", byIndex: byOrder(positions, options, path) };
  }
  checkShapes(parsed, result.byIndex, options, path);
  return result;
}

/** Every name a source name may go by: as is, with Lightning's `model.` prefix, and without it. */
function resolve(name: string, toTarget: (key: string) => string | undefined): Set<string> {
  const tries = [name, `model.${name}`];
  if (name.startsWith("model.")) tries.push(name.slice("model.".length));
  const found = new Set<string>();
  for (const key of tries) {
    const target = toTarget(key);
    if (target !== undefined) found.add(target);
  }
  return found;
}

function byNames(
  positions: readonly number[],
  names: readonly string[],
  options: OptimizerMappingOptions,
  path: string,
): Map<number, string> {
  const infos = new Map(options.targetParams.map((info) => [info.name, info]));
  const byIndex = new Map<number, string>();
  const claimedBy = new Map<string, string>();
  const problems: string[] = [];
  positions.forEach((index, i) => {
    const name = names[i]!;
    const found = resolve(name, options.toTarget);
    if (found.size === 0) {
      problems.push(`'${name}' matches no target parameter`);
      return;
    }
    if (found.size > 1) {
      problems.push(`'${name}' could be any of ${[...found].map((t) => `'${t}'`).join(", ")}`);
      return;
    }
    const target = [...found][0]!;
    const info = infos.get(target);
    if (!info) problems.push(`'${name}' matched '${target}', which the target model does not have`);
    else if (info.kind !== "parameter") problems.push(`'${name}' matched '${target}', a buffer`);
    else if (claimedBy.has(target)) {
      problems.push(`'${name}' and '${claimedBy.get(target)}' both match '${target}'`);
    } else {
      claimedBy.set(target, name);
      byIndex.set(index, target);
    }
  });
  if (problems.length > 0) {
    throw refuse("OPTIMIZER_MAPPING", "cannot name the optimizer's parameters", problems, path);
  }
  return byIndex;
}

function byOrder(
  positions: readonly number[],
  options: OptimizerMappingOptions,
  path: string,
): Map<number, string> {
  if (!options.sourceParamOrder) {
    throw refuse(
      "OPTIMIZER_MAPPING",
      "cannot name the optimizer's parameters",
      ["the state records no param_names and the source model's parameter order is unknown"],
      path,
    );
  }
  const infos = new Map(options.targetParams.map((info) => [info.name, info]));
  const parameters: { source: string; target: string }[] = [];
  const claimedBy = new Map<string, string>();
  const problems: string[] = [];
  for (const source of options.sourceParamOrder) {
    const target = options.toTarget(source);
    const info = target === undefined ? undefined : infos.get(target);
    if (info?.kind === "parameter") {
      const other = claimedBy.get(info.name);
      if (other !== undefined)
        problems.push(`'${other}' and '${source}' both match '${info.name}'`);
      claimedBy.set(info.name, source);
      parameters.push({ source, target: info.name });
    } else if (!info && !BUFFER_NAMES.test(source)) {
      // A source tensor without a target may have been a parameter: the positions after it are then unknown.
      problems.push(
        `'${source}' matches no target parameter, so whether the optimizer had it is unknown`,
      );
    }
  }
  if (problems.length > 0) {
    throw refuse(
      "OPTIMIZER_MAPPING",
      "cannot tell the optimizer's parameter order",
      problems,
      path,
    );
  }
  if (parameters.length !== positions.length) {
    throw refuse(
      "OPTIMIZER_COUNT_MISMATCH",
      "cannot map the optimizer by parameter order",
      [
        `the optimizer has ${positions.length} parameters but the source state dict has ${parameters.length} that are target parameters`,
      ],
      path,
    );
  }
  return new Map(positions.map((index, i) => [index, parameters[i]!.target]));
}

/** Every state tensor must have its parameter's shape: a wrong mapping shows here first. */
function checkShapes(
  parsed: ParsedOptimizerState,
  byIndex: ReadonlyMap<number, string>,
  options: OptimizerMappingOptions,
  path: string,
): void {
  const infos = new Map(options.targetParams.map((info) => [info.name, info]));
  const problems: string[] = [];
  for (const [index, entry] of parsed.state) {
    const name = byIndex.get(index);
    const info = name === undefined ? undefined : infos.get(name);
    if (!info) continue;
    const expected = options.checkpointShapeOf?.(info.name) ?? info.shape;
    for (const [slot, tensor] of entry.tensors) {
      if (!sameShape(tensor.shape, expected)) {
        problems.push(
          `state ${index} ${slot} has shape ${formatShape(tensor.shape)} but '${info.name}' has ${formatShape(expected)} in the checkpoint`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw refuse(
      "OPTIMIZER_SHAPE_MISMATCH",
      "the optimizer state does not fit the target parameters",
      problems,
      path,
    );
  }
}
