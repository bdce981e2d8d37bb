import { isDict, OpaqueObject, type PyValue } from "../formats/pickle/values.js";
import { Tensor } from "../tensors/tensor.js";
import { getPath, type TreePath } from "./tree.js";

/** A model's named tensors, and where in the checkpoint they were found. */
export interface StateDict {
  /** Path of the dict inside the checkpoint ([] for a bare state dict). */
  path: TreePath;
  tensors: Map<string, Tensor>;
}

/** Keys under which checkpoints commonly keep the model's state dict, most specific first. */
const STATE_DICT_KEYS = ["state_dict", "model_state_dict", "model", "module", "net", "network"];

/** The tensors of a dict with string keys, if it looks like a state dict (mostly tensors). */
export function asStateDict(value: PyValue | undefined): Map<string, Tensor> | undefined {
  if (!isDict(value) || value.size === 0) return undefined;
  const tensors = new Map<string, Tensor>();
  let others = 0;
  for (const [key, item] of value) {
    if (typeof key !== "string") return undefined;
    if (item instanceof Tensor) tensors.set(key, item);
    else others++;
  }
  // A state dict may carry a few non-tensor extras (`_extra_state`); a config dict does not hold tensors.
  return tensors.size > 0 && others <= tensors.size ? tensors : undefined;
}

/**
 * The model's state dict: Lightning's `state_dict`, `model_state_dict`, `model`, a pickled
 * `nn.Module` (rebuilt from its `_parameters`/`_buffers`/`_modules`), or a bare map of tensors.
 */
export function findModelStateDict(root: PyValue): StateDict | undefined {
  if (isDict(root)) {
    for (const key of STATE_DICT_KEYS) {
      const value = root.get(key);
      const tensors = asStateDict(value) ?? moduleStateDict(value);
      if (tensors) return { path: [key], tensors };
    }
  }
  const bare = asStateDict(root) ?? moduleStateDict(root);
  return bare ? { path: [], tensors: bare } : undefined;
}

/** The state dict at an explicit path. */
export function stateDictAt(root: PyValue, path: TreePath): Map<string, Tensor> | undefined {
  const value = getPath(root, path);
  return asStateDict(value) ?? moduleStateDict(value);
}

function attribute(object: OpaqueObject, name: string): PyValue | undefined {
  return isDict(object.state) ? object.state.get(name) : undefined;
}

/**
 * What `module.state_dict()` would return for a pickled `torch.nn.Module` (an opaque object):
 * parameters and persistent buffers of every submodule, with dotted names. Iterative.
 */
export function moduleStateDict(value: PyValue | undefined): Map<string, Tensor> | undefined {
  if (!(value instanceof OpaqueObject) || !isDict(attribute(value, "_modules"))) return undefined;
  const tensors = new Map<string, Tensor>();
  const seen = new Set<OpaqueObject>();
  const stack: [string, OpaqueObject][] = [["", value]];
  while (stack.length > 0) {
    const [prefix, module] = stack.pop()!;
    if (seen.has(module)) continue;
    seen.add(module);
    const nonPersistent = attribute(module, "_non_persistent_buffers_set");
    const skip = nonPersistent instanceof Set ? nonPersistent : new Set<PyValue>();
    for (const group of ["_parameters", "_buffers"]) {
      const members = attribute(module, group);
      if (!isDict(members)) continue;
      for (const [name, tensor] of members) {
        if (typeof name === "string" && tensor instanceof Tensor && !skip.has(name)) {
          tensors.set(prefix + name, tensor);
        }
      }
    }
    const children = attribute(module, "_modules");
    if (!isDict(children)) continue;
    const entries = [...children].reverse();
    for (const [name, child] of entries) {
      if (typeof name === "string" && child instanceof OpaqueObject) {
        stack.push([`${prefix}${name}.`, child]);
      }
    }
  }
  return tensors.size > 0 ? tensors : undefined;
}
