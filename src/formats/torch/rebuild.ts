import { FormatError, UnsafeCheckpointError, UnsupportedFormatError } from "../../errors.js";
import type { DType } from "../../tensors/dtype.js";
import { Tensor } from "../../tensors/tensor.js";
import type { CallContext, GlobalHandler } from "../pickle/types.js";
import {
  isDict,
  isTuple,
  makeTuple,
  PyGlobal,
  type PyObjectLike,
  type PyValue,
} from "../pickle/values.js";
import { describe } from "./describe.js";
import { torchDType } from "./dtypes.js";
import { numpyArrayTensor } from "./numpy-array.js";
import { isTorchStorage, storageAs, type TorchStorage } from "./storage.js";

/**
 * The torch globals a checkpoint may call, as TypeScript on inert values: the tensor and
 * parameter rebuild functions, `torch.Size` and `torch.device`. Each checks every argument's
 * type. Tensor kinds loadout cannot hold (sparse, quantized, nested, meta, wrapper subclasses)
 * are refused by name rather than built wrong.
 */

/** `torch.device`, inert: where the tensor lived when saved (loadout reads to the CPU). */
export interface TorchDevice extends PyObjectLike {
  readonly pyClass: "torch.device";
  readonly type: string;
  readonly index: number | null;
}

/** `torch.sparse_coo` and friends, as `torch.serialization._get_layout` names them. */
export interface TorchLayout extends PyObjectLike {
  readonly pyClass: "torch.layout";
  readonly name: string;
}

/** The handler for torch global `module.name`, or undefined when it is not on the allowlist. */
export function resolveTorchGlobal(module: string, name: string): GlobalHandler | undefined {
  return HANDLERS.get(`${module}.${name}`);
}

type Call = (args: readonly PyValue[], context: CallContext) => PyValue;

/** Rebuild functions whose result is a tensor: what `_rebuild_from_type_v2` may call. */
const TENSOR_REBUILDERS = new Map<string, Call>([
  ["torch._utils._rebuild_tensor", rebuildTensorV1],
  ["torch._utils._rebuild_tensor_v2", rebuildTensorV2],
  ["torch._utils._rebuild_tensor_v3", rebuildTensorV3],
  ["torch._utils._rebuild_parameter", rebuildParameter],
  ["torch._utils._rebuild_parameter_with_state", rebuildParameterWithState],
  ["torch._utils._rebuild_device_tensor_from_numpy", rebuildFromNumpy],
  // Older name of the same function, kept by torch for files that still use it.
  ["torch._utils._rebuild_xla_tensor", rebuildFromNumpy],
  ["torch._utils._rebuild_device_tensor_from_cpu_tensor", rebuildFromCpuTensor],
  ["torch._utils._rebuild_sparse_tensor", unsupported("SPARSE_TENSOR", "a sparse tensor")],
  ["torch._utils._rebuild_sparse_csr_tensor", unsupported("SPARSE_TENSOR", "a sparse CSR tensor")],
  ["torch._utils._rebuild_qtensor", unsupported("QUANTIZED_TENSOR", "a quantized tensor")],
  ["torch._utils._rebuild_nested_tensor", unsupported("NESTED_TENSOR", "a nested tensor")],
  [
    "torch.nested._internal.nested_tensor._rebuild_njt",
    unsupported("NESTED_TENSOR", "a nested (jagged) tensor"),
  ],
  [
    "torch._utils._rebuild_meta_tensor_no_storage",
    unsupported("META_TENSOR", "a meta tensor (shape only, no data)"),
  ],
  ["torch._utils._rebuild_wrapper_subclass", rebuildWrapperSubclass],
]);

const HANDLERS = new Map<string, GlobalHandler>([
  ...[...TENSOR_REBUILDERS].map(([name, call]) => [name, { call }] as const),
  ["torch._tensor._rebuild_from_type_v2", { call: rebuildFromTypeV2 }],
  // torch.load maps the pre-1.8 module name torch.tensor to torch._tensor.
  ["torch.tensor._rebuild_from_type_v2", { call: rebuildFromTypeV2 }],
  ["torch.Size", { call: torchSize }],
  ["torch.device", { call: torchDevice }],
  ["torch.serialization._get_layout", { call: getLayout }],
]);

const PARAMETER_CLASSES = new Set(["torch.nn.parameter.Parameter", "torch.nn.Parameter"]);
const TENSOR_CLASSES = new Set(["torch.Tensor", "torch._tensor.Tensor"]);

function rebuildTensorV1(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 4, 4, context);
  return buildTensor(args, false, undefined, context);
}

function rebuildTensorV2(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 6, 7, context);
  const requiresGrad = expectBool(args[4], "requires_grad", context);
  expectHooks(args[5], context);
  checkMetadata(args[6], context);
  return buildTensor(args, requiresGrad, undefined, context);
}

function rebuildTensorV3(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 7, 8, context);
  const requiresGrad = expectBool(args[4], "requires_grad", context);
  expectHooks(args[5], context);
  const dtype = expectDType(args[6], "dtype", context);
  checkMetadata(args[7], context);
  return buildTensor(args, requiresGrad, dtype, context);
}

/** (storage, storage_offset, size, stride) → a tensor viewing the storage. */
function buildTensor(
  args: readonly PyValue[],
  requiresGrad: boolean,
  dtype: DType | undefined,
  context: CallContext,
): Tensor {
  const storage = expectStorage(args[0], context);
  const storageOffset = expectIndex(args[1], "storage_offset", context);
  const shape = expectIndices(args[2], "size", context);
  const strides = expectIndices(args[3], "stride", context);
  return new Tensor({
    storage: dtype === undefined ? storage : storageAs(storage, dtype),
    dtype: dtype ?? storage.dtype,
    shape,
    strides,
    storageOffset,
    requiresGrad,
  });
}

function rebuildParameter(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 3, 3, context);
  const data = expectTensor(args[0], "data", context);
  const requiresGrad = expectBool(args[1], "requires_grad", context);
  expectHooks(args[2], context);
  return withFlags(data, { requiresGrad, isParameter: true });
}

function rebuildParameterWithState(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 4, 4, context);
  expectState(args[3], context);
  return rebuildParameter(args.slice(0, 3), context);
}

/**
 * `_rebuild_from_type_v2(func, new_type, args, state)`: how a tensor with Python attributes or of
 * a subclass is saved. `func` must itself be a tensor rebuild function; plain tensors and
 * parameters are kept, other subclasses refused. The attributes in `state` are dropped.
 */
function rebuildFromTypeV2(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 4, 4, context);
  const [func, newType, funcArgs, state] = args;
  if (!(func instanceof PyGlobal)) throw badArgument(context, "func", "a global", func);
  const rebuild = TENSOR_REBUILDERS.get(func.qualifiedName);
  if (!rebuild) {
    throw new UnsafeCheckpointError(
      "UNSAFE_GLOBAL",
      `${context.global} asks to call ${func.qualifiedName}, which is not a torch tensor rebuild function`,
      {
        file: context.file,
        global: func.qualifiedName,
        hint: "Only torch's own tensor rebuild functions may be called.",
      },
    );
  }
  if (!(newType instanceof PyGlobal)) throw badArgument(context, "new_type", "a class", newType);
  if (!Array.isArray(funcArgs)) throw badArgument(context, "args", "a tuple", funcArgs);
  expectState(state, context);
  const tensor = rebuild(funcArgs, { ...context, global: func.qualifiedName });
  if (!(tensor instanceof Tensor)) {
    throw badArgument(context, "func", "a function returning a tensor", func);
  }
  if (PARAMETER_CLASSES.has(newType.qualifiedName)) {
    return withFlags(tensor, { requiresGrad: tensor.requiresGrad, isParameter: true });
  }
  if (TENSOR_CLASSES.has(newType.qualifiedName)) return tensor;
  throw new UnsupportedFormatError(
    "TENSOR_SUBCLASS",
    `the checkpoint holds a tensor of subclass ${newType.qualifiedName}`,
    {
      file: context.file,
      hint: "Re-save it as a plain tensor (tensor.as_subclass(torch.Tensor)).",
    },
  );
}

/** `_rebuild_device_tensor_from_numpy(data, dtype, device, requires_grad)`: a tensor from numpy bytes. */
function rebuildFromNumpy(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 4, 4, context);
  const dtype = expectDType(args[1], "dtype", context);
  const requiresGrad = expectBool(args[3], "requires_grad", context);
  const tensor = numpyArrayTensor(args[0], context);
  if (tensor === undefined) throw badArgument(context, "data", "a numpy array", args[0]);
  if (tensor.dtype !== dtype) {
    throw new UnsupportedFormatError(
      "DTYPE_CONVERSION",
      `${context.global} converts a numpy array of ${tensor.dtype} to ${dtype} while loading`,
      { file: context.file, hint: "Re-save the tensor with torch.save on the CPU." },
    );
  }
  return withFlags(tensor, { requiresGrad, isParameter: false });
}

/** `_rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad)`. */
function rebuildFromCpuTensor(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 4, 4, context);
  const data = expectTensor(args[0], "data", context);
  const dtype = expectDType(args[1], "dtype", context);
  const requiresGrad = expectBool(args[3], "requires_grad", context);
  if (data.dtype !== dtype) {
    throw new UnsupportedFormatError(
      "DTYPE_CONVERSION",
      `${context.global} converts a tensor of ${data.dtype} to ${dtype} while loading`,
      { file: context.file, hint: "Re-save the tensor with torch.save on the CPU." },
    );
  }
  return withFlags(data, { requiresGrad, isParameter: data.isParameter });
}

function rebuildWrapperSubclass(args: readonly PyValue[], context: CallContext): PyValue {
  const cls = args[0] instanceof PyGlobal ? ` (${args[0].qualifiedName})` : "";
  return unsupported("WRAPPER_SUBCLASS", `a wrapper tensor subclass${cls}`)(args, context);
}

function unsupported(code: string, what: string): Call {
  return (_args, context) => {
    throw new UnsupportedFormatError(code, `the checkpoint holds ${what} (${context.global})`, {
      file: context.file,
      hint: "loadout reads dense tensors only: convert it (e.g. .to_dense(), .dequantize()) and re-save.",
    });
  };
}

/** `torch.Size(sizes)` → a tuple of numbers. */
function torchSize(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 0, 1, context);
  const sizes = args.length === 0 ? [] : expectIndices(args[0], "sizes", context);
  // A new tuple, as torch.Size(t) is a new object: the tree must not gain a shared container.
  return makeTuple([...sizes]) as PyValue;
}

/** `torch.device("cuda:1")` or `torch.device("cuda", 1)` → an inert TorchDevice. */
function torchDevice(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 1, 2, context);
  const spec = args[0];
  if (typeof spec !== "string") throw badArgument(context, "type", "a string", spec);
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?::(\d{1,9}))?$/.exec(spec);
  if (!match) throw badArgument(context, "type", "a device string such as 'cuda:0'", spec);
  let index: number | null = match[2] === undefined ? null : Number(match[2]);
  if (args.length === 2 && args[1] !== null) {
    if (index !== null)
      throw badArgument(context, "index", "absent when the type names one", args[1]);
    index = expectIndex(args[1], "index", context);
  }
  const device: TorchDevice = Object.freeze({ pyClass: "torch.device", type: match[1]!, index });
  return device;
}

function getLayout(args: readonly PyValue[], context: CallContext): PyValue {
  expectArity(args, 1, 1, context);
  const name = args[0];
  if (typeof name !== "string") throw badArgument(context, "name", "a string", name);
  const layout: TorchLayout = Object.freeze({ pyClass: "torch.layout", name });
  return layout;
}

function withFlags(tensor: Tensor, flags: { requiresGrad: boolean; isParameter: boolean }): Tensor {
  if (tensor.requiresGrad === flags.requiresGrad && tensor.isParameter === flags.isParameter) {
    return tensor;
  }
  return new Tensor({
    storage: tensor.storage,
    dtype: tensor.dtype,
    shape: tensor.shape,
    strides: tensor.strides,
    storageOffset: tensor.storageOffset,
    key: tensor.key,
    ...flags,
  });
}

// Argument checks: each names the global and the argument it refuses.

function expectArity(
  args: readonly PyValue[],
  min: number,
  max: number,
  context: CallContext,
): void {
  if (args.length < min || args.length > max) {
    const wanted = min === max ? `${min}` : `${min} to ${max}`;
    throw new FormatError(
      "BAD_REBUILD_ARGUMENTS",
      `${context.global} called with ${args.length} arguments, expected ${wanted}`,
      { file: context.file, hint: "The checkpoint is corrupt or was not written by torch.save." },
    );
  }
}

function expectStorage(value: PyValue | undefined, context: CallContext): TorchStorage {
  if (!isTorchStorage(value)) throw badArgument(context, "storage", "a storage", value);
  return value;
}

function expectTensor(value: PyValue | undefined, name: string, context: CallContext): Tensor {
  if (!(value instanceof Tensor)) throw badArgument(context, name, "a tensor", value);
  return value;
}

function expectBool(value: PyValue | undefined, name: string, context: CallContext): boolean {
  if (typeof value === "boolean") return value;
  // Python 2 pickles (protocol 0/1) may spell booleans as the integers 0 and 1.
  if (value === 0 || value === 1) return value === 1;
  throw badArgument(context, name, "a boolean", value);
}

function expectIndex(value: PyValue | undefined, name: string, context: CallContext): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw badArgument(context, name, "a non-negative integer", value);
  }
  return value;
}

/**
 * A tuple or list of non-negative integers. A tuple that passes is returned as it is (it is
 * frozen, so a Tensor can keep it without a copy); a list is copied into a new array.
 */
function expectIndices(
  value: PyValue | undefined,
  name: string,
  context: CallContext,
): readonly number[] {
  if (!Array.isArray(value)) throw badArgument(context, name, "a tuple of integers", value);
  const items: readonly PyValue[] = value;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (typeof item !== "number" || !Number.isSafeInteger(item) || item < 0) {
      throw badArgument(context, `${name} element`, "a non-negative integer", item);
    }
  }
  const indices = items as readonly number[];
  return isTuple(items) ? indices : Object.freeze(indices.slice());
}

function expectDType(value: PyValue | undefined, name: string, context: CallContext): DType {
  const found = value instanceof PyGlobal ? torchDType(value.module, value.name) : undefined;
  if (found === undefined) throw badArgument(context, name, "a torch dtype", value);
  if ("unsupported" in found) {
    throw new UnsupportedFormatError(
      "UNSUPPORTED_DTYPE",
      `the checkpoint holds a tensor of dtype ${found.unsupported}, which loadout cannot read`,
      { file: context.file, hint: "Convert the tensor to a standard dtype and re-save it." },
    );
  }
  return found.dtype;
}

/** backward_hooks: an (OrderedDict) dict, dropped as torch itself drops them. */
function expectHooks(value: PyValue | undefined, context: CallContext): void {
  if (value !== null && !isDict(value))
    throw badArgument(context, "backward_hooks", "a dict", value);
}

/** A Python object state: None, a dict, or a (dict, slots) pair. */
function expectState(value: PyValue | undefined, context: CallContext): void {
  if (value === null || isDict(value)) return;
  if (
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((part: PyValue) => part === null || isDict(part))
  ) {
    return;
  }
  throw badArgument(context, "state", "None, a dict or a (dict, slots) pair", value);
}

/**
 * Tensor metadata (`{'conj': True}`, `{'neg': True}`) means the stored values must be
 * conjugated or negated to be the tensor's: loadout reads stored values, so it refuses.
 */
function checkMetadata(value: PyValue | undefined, context: CallContext): void {
  if (value === undefined || value === null) return;
  if (!isDict(value)) throw badArgument(context, "metadata", "a dict", value);
  for (const [key, flag] of value) {
    if (flag === false || flag === 0 || flag === null) continue;
    throw new UnsupportedFormatError(
      "TENSOR_METADATA",
      `the checkpoint holds a tensor saved with metadata ${String(key)}=${describe(flag)} (a lazy ${String(key)} view)`,
      {
        file: context.file,
        hint: "Resolve it before saving (tensor.resolve_conj().resolve_neg()) and re-save.",
      },
    );
  }
}

function badArgument(
  context: CallContext,
  name: string,
  expected: string,
  value: PyValue | undefined,
): FormatError {
  return new FormatError(
    "BAD_REBUILD_ARGUMENTS",
    `${context.global}: argument ${name} must be ${expected}, not ${describe(value)}`,
    { file: context.file, hint: "The checkpoint is corrupt or was not written by torch.save." },
  );
}
