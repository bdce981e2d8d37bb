import { internPrefix } from "../../tensors/shape.js";
import { Tensor } from "../../tensors/tensor.js";
import { OpcodeScan } from "../pickle/opcode-scan.js";
import { Op } from "../pickle/opcodes.js";
import type { CallShortcut, ShortcutRun } from "../pickle/types.js";
import { PyGlobal, type PyValue } from "../pickle/values.js";
import type { TorchStorage } from "./storage.js";

/** The opcode that makes a tuple of 1, 2 or 3 values from the top of the stack. */
const SMALL_TUPLE = [-1, Op.TUPLE1, Op.TUPLE2, Op.TUPLE3];

/** Where the shortcut gets a storage from: the file's persistent_load, given the id's parts. */
export interface StorageFinder {
  /** undefined wherever persistent_load would refuse the id. */
  storageFor(storageType: PyGlobal, key: string, numel: number): TorchStorage | undefined;
}

/**
 * torch.save writes every tensor with the same 30 or so opcodes (pickle protocol 2):
 *
 *     BINGET _rebuild_tensor_v2  MARK
 *       MARK  'storage' storage_class key location numel  TUPLE  BINPERSID
 *       storage_offset  (size...)  (stride...)  requires_grad
 *       OrderedDict ()  REDUCE
 *     TUPLE  REDUCE
 *
 * with a PUT after nearly every value. Run opcode by opcode, a 20,000-tensor checkpoint spent
 * most of its opening time here: dispatching 600,000 opcodes and building tuples, argument lists
 * and empty hook dicts that die at once. This shortcut reads exactly that sequence and builds the
 * tensor `_rebuild_tensor_v2` would have, with the same storage from the same loader. Anything
 * else (metadata, another opcode, a PUT the pickle reads back, a storage the loader refuses,
 * a view outside its storage) declines, and the unpickler runs the opcodes and reports any error.
 */
export class RebuildTensorShortcut implements CallShortcut {
  readonly global = "torch._utils._rebuild_tensor_v2";
  private readonly scan = new OpcodeScan();
  /** Where counts() reads sizes; only its first entries are meaningful. */
  private readonly sizes: number[] = [];

  constructor(private readonly storages: StorageFinder) {}

  take(run: ShortcutRun): PyValue | undefined {
    const scan = this.scan;
    scan.begin(run);
    if (!scan.mark() || !scan.mark()) return undefined;

    // The persistent id: ('storage', storage_class, key, location, numel).
    if (scan.memoValue() !== "storage") return undefined;
    const storageType = scan.memoValue();
    if (!(storageType instanceof PyGlobal)) return undefined;
    const key = scan.asciiString();
    if (key === undefined || !scan.optionalPut()) return undefined;
    if (typeof scan.memoValue() !== "string") return undefined;
    const numel = scan.count();
    if (numel < 0 || scan.tuple() !== 5 || !scan.optionalPut()) return undefined;
    if (!scan.popsPushes(Op.BINPERSID, 1)) return undefined;

    const storageOffset = scan.count();
    if (storageOffset < 0) return undefined;
    const shape = this.counts();
    if (shape === undefined) return undefined;
    const strides = this.counts();
    if (strides === undefined) return undefined;
    const requiresGrad = scan.boolean();
    if (requiresGrad < 0) return undefined;

    // backward_hooks: OrderedDict(), which _rebuild_tensor_v2 drops.
    const hooks = scan.memoValue();
    if (
      !(hooks instanceof PyGlobal) ||
      hooks.module !== "collections" ||
      hooks.name !== "OrderedDict" ||
      !scan.pushes(Op.EMPTY_TUPLE) ||
      !scan.popsPushes(Op.REDUCE, 2) ||
      !scan.optionalPut()
    ) {
      return undefined;
    }
    // Six arguments: no metadata (a seventh, which may ask for conj/neg, is left to the rebuild).
    if (scan.tuple() !== 6 || !scan.optionalPut() || !scan.popsPushes(Op.REDUCE, 2)) {
      return undefined;
    }

    const storage = this.storages.storageFor(storageType, key, numel);
    if (storage === undefined) return undefined;
    let tensor: Tensor;
    try {
      tensor = new Tensor({
        storage,
        dtype: storage.dtype,
        shape,
        strides,
        storageOffset,
        requiresGrad: requiresGrad === 1,
      });
    } catch {
      // A view outside its storage: the rebuild call throws it, located in the pickle.
      return undefined;
    }
    scan.finish();
    return tensor;
  }

  /**
   * A tuple of counts (`()`, TUPLE1/2/3, or MARK ... TUPLE) and its optional PUT, as an interned
   * shape: read into a reused buffer, so a shape seen before allocates nothing.
   */
  private counts(): readonly number[] | undefined {
    const scan = this.scan;
    const into = this.sizes;
    let length = 0;
    if (scan.pushes(Op.EMPTY_TUPLE)) {
      // length 0
    } else if (scan.mark()) {
      for (let value = scan.count(); value >= 0; value = scan.count()) into[length++] = value;
      if (scan.tuple() !== length) return undefined;
    } else {
      while (length < 3) {
        const value = scan.count();
        if (value < 0) break;
        into[length++] = value;
      }
      if (length === 0 || !scan.popsPushes(SMALL_TUPLE[length]!, length)) return undefined;
    }
    return scan.optionalPut() ? internPrefix(into, length) : undefined;
  }
}
