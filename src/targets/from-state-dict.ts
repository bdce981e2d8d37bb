import { dtypeInfo } from "../tensors/dtype.js";
import type { Tensor } from "../tensors/tensor.js";
import { MemoryModel, type MemoryParameterSpec } from "./memory.js";

/** State-dict entries that are buffers by name (BatchNorm's running statistics). */
const BUFFER_NAMES = /(^|\.)(running_mean|running_var|num_batches_tracked)$/;

export interface FromStateDictOptions {
  /**
   * The names that are parameters (for instance an optimizer's param_names); every other entry
   * is then a buffer. Without it, buffers are told by name and dtype (see modelFromStateDict).
   */
  parameterNames?: ReadonlySet<string>;
}

/**
 * A model made of a state dict's tensors, each read in its own dtype: how `--target file.pt`
 * becomes a model. A state dict does not say which entries are parameters, so entries named
 * `running_mean`, `running_var`, `num_batches_tracked`, and integer or bool tensors (which cannot
 * have gradients) are non-trainable buffers; everything else (float and complex) is a trainable
 * parameter. Other float buffers (normalisation statistics) cannot be told apart by name: pass
 * `parameterNames` when the parameters are known.
 */
export async function modelFromStateDict(
  tensors: ReadonlyMap<string, Tensor>,
  options: FromStateDictOptions = {},
): Promise<MemoryModel> {
  const specs: MemoryParameterSpec[] = [];
  for (const [name, tensor] of tensors) {
    const buffer = options.parameterNames
      ? !options.parameterNames.has(name)
      : isBufferLike(name, tensor);
    specs.push({
      name,
      shape: tensor.shape,
      dtype: tensor.dtype,
      kind: buffer ? "buffer" : "parameter",
      trainable: !buffer,
      value: await tensor.read(),
    });
  }
  return new MemoryModel(specs);
}

function isBufferLike(name: string, tensor: Tensor): boolean {
  const kind = dtypeInfo(tensor.dtype).kind;
  return BUFFER_NAMES.test(name) || kind === "int" || kind === "uint" || kind === "bool";
}
