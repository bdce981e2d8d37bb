import { describe, expect, it } from "vitest";
import { FormatError, UnsafeCheckpointError, UnsupportedFormatError } from "../../src/errors.js";
import { NumpyArray, NumpyDtype } from "../../src/formats/pickle/numpy.js";
import type { CallContext } from "../../src/formats/pickle/types.js";
import { makeTuple, PyGlobal, type PyValue } from "../../src/formats/pickle/values.js";
import { resolveTorchGlobal } from "../../src/formats/torch/rebuild.js";
import { makeTorchStorage, type TorchStorage } from "../../src/formats/torch/storage.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { Tensor } from "../../src/tensors/tensor.js";

const context = (global: string): CallContext => ({ global, file: "test.pt" });

function call(qualified: string, args: PyValue[]): PyValue {
  const dot = qualified.lastIndexOf(".");
  const handler = resolveTorchGlobal(qualified.slice(0, dot), qualified.slice(dot + 1));
  if (!handler?.call) throw new Error(`no handler for ${qualified}`);
  return handler.call(makeTuple(args), context(qualified));
}

const tuple = (...items: PyValue[]) => makeTuple(items) as PyValue;
const g = (qualified: string) => {
  const dot = qualified.lastIndexOf(".");
  return new PyGlobal(qualified.slice(0, dot), qualified.slice(dot + 1));
};

/** float32 storage holding 0, 1, ..., n-1. */
function floatStorage(n: number, key = "0"): TorchStorage {
  const bytes = new Uint8Array(new Float32Array(Array.from({ length: n }, (_, i) => i)).buffer);
  return makeTorchStorage({
    source: new MemorySource(bytes, `test.pt:data/${key}`),
    dtype: "float32",
    bigEndian: false,
    untyped: false,
    key,
  });
}

function untypedStorage(bytes: number[]): TorchStorage {
  return makeTorchStorage({
    source: new MemorySource(Uint8Array.from(bytes), "test.pt:data/u"),
    dtype: "uint8",
    bigEndian: false,
    untyped: true,
    key: "u",
  });
}

const hooks = () => new Map<PyValue, PyValue>();

function v2(
  storage: PyValue,
  offset: PyValue,
  size: PyValue,
  stride: PyValue,
  extra: PyValue[] = [],
) {
  return call("torch._utils._rebuild_tensor_v2", [
    storage,
    offset,
    size,
    stride,
    false,
    hooks(),
    ...extra,
  ]);
}

async function values(t: PyValue): Promise<number[]> {
  expect(t).toBeInstanceOf(Tensor);
  return [...((await (t as Tensor).read({ dtype: "float64" })) as Float64Array)];
}

function codeOf(run: () => unknown): { error: unknown; code: string | undefined } {
  try {
    run();
  } catch (error) {
    return { error, code: (error as { code?: string }).code };
  }
  throw new Error("expected an error");
}

describe("tensor rebuild functions", () => {
  it("_rebuild_tensor_v2 views its storage with offset, size and stride", async () => {
    const t = v2(floatStorage(6), 1, tuple(2, 2), tuple(2, 1)) as Tensor;
    expect(t.dtype).toBe("float32");
    expect([...t.shape]).toEqual([2, 2]);
    expect(t.storageOffset).toBe(1);
    // Elements 1 + 2i + j.
    expect(await values(t)).toEqual([1, 2, 3, 4]);
    expect(t.requiresGrad).toBe(false);
    expect(t.isParameter).toBe(false);
    // Transposed view: strides (1, 2).
    expect(await values(v2(floatStorage(6), 0, tuple(2, 3), tuple(1, 2)))).toEqual([
      0, 2, 4, 1, 3, 5,
    ]);
  });

  it("_rebuild_tensor (torch < 1.0) and requires_grad", async () => {
    const old = call("torch._utils._rebuild_tensor", [floatStorage(3), 0, tuple(3), tuple(1)]);
    expect(await values(old)).toEqual([0, 1, 2]);
    const grad = call("torch._utils._rebuild_tensor_v2", [
      floatStorage(3),
      0,
      tuple(3),
      tuple(1),
      true,
      hooks(),
    ]) as Tensor;
    expect(grad.requiresGrad).toBe(true);
  });

  it("_rebuild_tensor_v3 gives an untyped storage the tensor's dtype, sharing it", async () => {
    const storage = untypedStorage([1, 0, 255, 255, 7, 0]);
    const dtype = g("torch.uint16");
    const a = call("torch._utils._rebuild_tensor_v3", [
      storage,
      0,
      tuple(3),
      tuple(1),
      false,
      hooks(),
      dtype,
    ]);
    const b = call("torch._utils._rebuild_tensor_v3", [
      storage,
      2,
      tuple(1),
      tuple(1),
      false,
      hooks(),
      dtype,
    ]);
    expect((a as Tensor).dtype).toBe("uint16");
    expect(await values(a)).toEqual([1, 65535, 7]);
    expect(await values(b)).toEqual([7]);
    // One storage object per (storage, dtype): shared storage stays shared.
    expect((a as Tensor).storage).toBe((b as Tensor).storage);
    expect((a as Tensor).storage.source).toBe(storage.source);
  });

  it("accepts empty or false metadata and refuses conj/neg views", () => {
    const metadata = new Map<PyValue, PyValue>([["conj", false]]);
    expect(v2(floatStorage(2), 0, tuple(2), tuple(1), [metadata])).toBeInstanceOf(Tensor);
    expect(v2(floatStorage(2), 0, tuple(2), tuple(1), [null])).toBeInstanceOf(Tensor);
    for (const flag of ["conj", "neg"]) {
      const { error, code } = codeOf(() =>
        v2(floatStorage(2), 0, tuple(2), tuple(1), [new Map<PyValue, PyValue>([[flag, true]])]),
      );
      expect(error).toBeInstanceOf(UnsupportedFormatError);
      expect(code).toBe("TENSOR_METADATA");
      expect((error as Error).message).toContain(flag);
    }
  });

  it("refuses views that reach past their storage", () => {
    const { error, code } = codeOf(() => v2(floatStorage(4), 1, tuple(2, 2), tuple(2, 1)));
    expect(error).toBeInstanceOf(FormatError);
    expect(code).toBe("VIEW_OUT_OF_STORAGE");
  });

  it.each<[string, () => PyValue]>([
    ["a storage that is not one", () => v2("not a storage", 0, tuple(1), tuple(1))],
    ["a negative offset", () => v2(floatStorage(2), -1, tuple(1), tuple(1))],
    ["a fractional size", () => v2(floatStorage(2), 0, tuple(1.5), tuple(1))],
    ["a huge size", () => v2(floatStorage(2), 0, tuple(2n ** 70n), tuple(1))],
    ["a size that is not a tuple", () => v2(floatStorage(2), 0, 2, tuple(1))],
    [
      "too few arguments",
      () => call("torch._utils._rebuild_tensor_v2", [floatStorage(2), 0, tuple(1)]),
    ],
    [
      "a non-boolean requires_grad",
      () =>
        call("torch._utils._rebuild_tensor_v2", [
          floatStorage(2),
          0,
          tuple(1),
          tuple(1),
          "yes",
          hooks(),
        ]),
    ],
    [
      "hooks that are not a dict",
      () =>
        call("torch._utils._rebuild_tensor_v2", [floatStorage(2), 0, tuple(1), tuple(1), false, 3]),
    ],
    [
      "a dtype that is not a torch dtype",
      () =>
        call("torch._utils._rebuild_tensor_v3", [
          untypedStorage([0, 0]),
          0,
          tuple(1),
          tuple(1),
          false,
          hooks(),
          g("numpy.float16"),
        ]),
    ],
  ])("refuses %s", (_what, run) => {
    const { error, code } = codeOf(run);
    expect(error).toBeInstanceOf(FormatError);
    expect(code).toBe("BAD_REBUILD_ARGUMENTS");
    expect((error as Error).message).toContain("torch._utils._rebuild_tensor");
  });

  it("refuses dtypes loadout cannot hold by name", () => {
    const { error, code } = codeOf(() =>
      call("torch._utils._rebuild_tensor_v3", [
        untypedStorage([0, 0, 0, 0]),
        0,
        tuple(1),
        tuple(1),
        false,
        hooks(),
        g("torch.complex32"),
      ]),
    );
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect(code).toBe("UNSUPPORTED_DTYPE");
    expect((error as Error).message).toContain("torch.complex32");
  });
});

describe("parameters and subclasses", () => {
  const plain = () => v2(floatStorage(3), 0, tuple(3), tuple(1));

  it("_rebuild_parameter marks the tensor a parameter with its requires_grad", async () => {
    const p = call("torch._utils._rebuild_parameter", [plain(), true, hooks()]) as Tensor;
    expect(p.isParameter).toBe(true);
    expect(p.requiresGrad).toBe(true);
    expect(await values(p)).toEqual([0, 1, 2]);
    const frozen = call("torch._utils._rebuild_parameter", [plain(), false, hooks()]) as Tensor;
    expect(frozen).toMatchObject({ isParameter: true, requiresGrad: false });
  });

  it("_rebuild_parameter_with_state accepts a state and drops it", () => {
    const state = new Map<PyValue, PyValue>([["bar", "x"]]);
    const p = call("torch._utils._rebuild_parameter_with_state", [plain(), true, hooks(), state]);
    expect(p).toMatchObject({ isParameter: true, requiresGrad: true });
    expect(
      codeOf(() => call("torch._utils._rebuild_parameter_with_state", [plain(), true, hooks(), 5]))
        .code,
    ).toBe("BAD_REBUILD_ARGUMENTS");
    expect(codeOf(() => call("torch._utils._rebuild_parameter", ["x", true, hooks()])).code).toBe(
      "BAD_REBUILD_ARGUMENTS",
    );
  });

  const v2Args = () => tuple(floatStorage(2), 0, tuple(2), tuple(1), false, hooks());

  it("_rebuild_from_type_v2 calls a rebuild function and keeps tensors and parameters", async () => {
    const rebuild = g("torch._utils._rebuild_tensor_v2");
    const state = new Map<PyValue, PyValue>([["note", "dropped"]]);
    const t = call("torch._tensor._rebuild_from_type_v2", [
      rebuild,
      g("torch.Tensor"),
      v2Args(),
      state,
    ]);
    expect(await values(t)).toEqual([0, 1]);
    expect((t as Tensor).isParameter).toBe(false);
    const p = call("torch._tensor._rebuild_from_type_v2", [
      rebuild,
      g("torch.nn.parameter.Parameter"),
      v2Args(),
      null,
    ]);
    expect((p as Tensor).isParameter).toBe(true);
  });

  it("_rebuild_from_type_v2 refuses functions that are not rebuild functions", () => {
    const { error, code } = codeOf(() =>
      call("torch._tensor._rebuild_from_type_v2", [
        g("os.system"),
        g("torch.Tensor"),
        tuple("ls"),
        null,
      ]),
    );
    expect(error).toBeInstanceOf(UnsafeCheckpointError);
    expect(code).toBe("UNSAFE_GLOBAL");
    expect((error as UnsafeCheckpointError).global).toBe("os.system");
  });

  it("_rebuild_from_type_v2 refuses other tensor subclasses by name", () => {
    const { error, code } = codeOf(() =>
      call("torch._tensor._rebuild_from_type_v2", [
        g("torch._utils._rebuild_tensor_v2"),
        g("mylib.MyTensor"),
        v2Args(),
        null,
      ]),
    );
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect(code).toBe("TENSOR_SUBCLASS");
    expect((error as Error).message).toContain("mylib.MyTensor");
  });

  it("_rebuild_device_tensor_from_cpu_tensor keeps the tensor when no conversion is asked", () => {
    const t = call("torch._utils._rebuild_device_tensor_from_cpu_tensor", [
      plain(),
      g("torch.float32"),
      "cuda:0",
      true,
    ]);
    expect(t).toMatchObject({ dtype: "float32", requiresGrad: true });
    expect(
      codeOf(() =>
        call("torch._utils._rebuild_device_tensor_from_cpu_tensor", [
          plain(),
          g("torch.float16"),
          "cpu",
          false,
        ]),
      ).code,
    ).toBe("DTYPE_CONVERSION");
  });

  it("_rebuild_device_tensor_from_numpy reads the array's bytes, in C or Fortran order", async () => {
    const array = (fortran: boolean) => {
      const a = new NumpyArray();
      const bytes = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer);
      a.fill(context("numpy"), tuple(2, 3), NumpyDtype.fromCode("f4")!, fortran, bytes);
      return a;
    };
    const rebuild = (a: NumpyArray, dtype = "torch.float32") =>
      call("torch._utils._rebuild_device_tensor_from_numpy", [a, g(dtype), "cpu", false]);
    expect(await values(rebuild(array(false)))).toEqual([0, 1, 2, 3, 4, 5]);
    // Fortran order: element (i, j) is at i + 2j.
    expect(await values(rebuild(array(true)))).toEqual([0, 2, 4, 1, 3, 5]);
    expect(codeOf(() => rebuild(array(false), "torch.float64")).code).toBe("DTYPE_CONVERSION");
    expect(
      codeOf(() =>
        call("torch._utils._rebuild_device_tensor_from_numpy", [
          1,
          g("torch.float32"),
          "cpu",
          false,
        ]),
      ).code,
    ).toBe("BAD_REBUILD_ARGUMENTS");
  });
});

describe("tensor kinds loadout does not read", () => {
  it.each([
    ["torch._utils._rebuild_sparse_tensor", "SPARSE_TENSOR", "sparse"],
    ["torch._utils._rebuild_sparse_csr_tensor", "SPARSE_TENSOR", "sparse"],
    ["torch._utils._rebuild_qtensor", "QUANTIZED_TENSOR", "quantized"],
    ["torch._utils._rebuild_nested_tensor", "NESTED_TENSOR", "nested"],
    ["torch.nested._internal.nested_tensor._rebuild_njt", "NESTED_TENSOR", "nested"],
    ["torch._utils._rebuild_meta_tensor_no_storage", "META_TENSOR", "meta"],
    ["torch._utils._rebuild_wrapper_subclass", "WRAPPER_SUBCLASS", "mylib.Fancy"],
  ])("%s is refused as %s", (global, code, named) => {
    const { error, code: actual } = codeOf(() => call(global, [g("mylib.Fancy"), 1, 2]));
    expect(error).toBeInstanceOf(UnsupportedFormatError);
    expect(actual).toBe(code);
    expect((error as Error).message).toContain(named);
  });
});

describe("torch.Size, torch.device, layouts", () => {
  it("torch.Size gives a tuple of sizes", () => {
    const size = call("torch.Size", [tuple(2, 3)]);
    expect(size).toEqual([2, 3]);
    expect(Object.isFrozen(size)).toBe(true);
    expect(call("torch.Size", [])).toEqual([]);
    expect(codeOf(() => call("torch.Size", [tuple("a")])).code).toBe("BAD_REBUILD_ARGUMENTS");
  });

  it("torch.device gives an inert device from either spelling", () => {
    expect(call("torch.device", ["cuda", 1])).toEqual({
      pyClass: "torch.device",
      type: "cuda",
      index: 1,
    });
    expect(call("torch.device", ["cuda:1"])).toEqual({
      pyClass: "torch.device",
      type: "cuda",
      index: 1,
    });
    expect(call("torch.device", ["cpu"])).toEqual({
      pyClass: "torch.device",
      type: "cpu",
      index: null,
    });
    expect(call("torch.device", ["cpu", null])).toEqual({
      pyClass: "torch.device",
      type: "cpu",
      index: null,
    });
    for (const args of [["cuda:0", 1], ["cuda:x"], [3], ["cuda", -1]] as PyValue[][]) {
      expect(codeOf(() => call("torch.device", args)).code, JSON.stringify(args)).toBe(
        "BAD_REBUILD_ARGUMENTS",
      );
    }
  });

  it("torch.serialization._get_layout gives an inert layout", () => {
    expect(call("torch.serialization._get_layout", ["torch.sparse_coo"])).toEqual({
      pyClass: "torch.layout",
      name: "torch.sparse_coo",
    });
  });

  it("has no handler for anything else", () => {
    for (const [module, name] of [
      ["torch", "load"],
      ["torch", "Tensor"],
      ["builtins", "eval"],
      ["torch._utils", "_rebuild_from_type"],
      ["torch.serialization", "load"],
    ]) {
      expect(resolveTorchGlobal(module!, name!), `${module}.${name}`).toBeUndefined();
    }
  });
});
