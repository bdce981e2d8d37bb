import { describe, expect, it } from "vitest";
import { storageKind, torchDType } from "../../src/formats/torch/dtypes.js";
import { isDType } from "../../src/tensors/dtype.js";
import { fixture, readJson } from "./helpers.js";

/** torch's own storage classes and dtypes, listed by torch 2.13 (fixtures/make-fixtures.py). */
const names = readJson<{ storages: Record<string, string>; dtypes: Record<string, string> }>(
  fixture("torch-names.json"),
);

const split = (qualified: string) => {
  const dot = qualified.lastIndexOf(".");
  return [qualified.slice(0, dot), qualified.slice(dot + 1)] as const;
};

describe("storage classes", () => {
  it("maps every torch storage class to torch's dtype, or refuses quantized ones by name", () => {
    for (const [qualified, dtype] of Object.entries(names.storages)) {
      const kind = storageKind(...split(qualified));
      if (dtype.startsWith("q")) {
        expect(kind, qualified).toEqual({
          kind: "unsupported",
          what: `quantized storage ${qualified}`,
        });
      } else {
        expect(kind, qualified).toEqual({ kind: "typed", dtype });
      }
    }
  });

  it("treats untyped and typed storage classes as bytes", () => {
    for (const qualified of [
      "torch.storage.UntypedStorage",
      "torch.UntypedStorage",
      "torch.storage.TypedStorage",
    ]) {
      expect(storageKind(...split(qualified)), qualified).toEqual({ kind: "untyped" });
    }
  });

  it("knows nothing else", () => {
    expect(storageKind("torch", "Tensor")).toBeUndefined();
    expect(storageKind("os", "FloatStorage")).toBeUndefined();
    expect(storageKind("torch.cuda", "UntypedStorage")).toBeUndefined();
  });

  it("takes no name from an object's prototype for a storage class or a dtype", () => {
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      expect(storageKind("torch", name), name).toBeUndefined();
      expect(torchDType("torch", name), name).toBeUndefined();
    }
  });
});

describe("dtype globals", () => {
  it("maps every torch dtype (and alias) to torch's canonical name, or names it unsupported", () => {
    for (const [qualified, canonical] of Object.entries(names.dtypes)) {
      const found = torchDType(...split(qualified));
      if (isDType(canonical)) {
        expect(found, qualified).toEqual({ dtype: canonical });
      } else {
        expect(found, qualified).toEqual({ unsupported: qualified });
      }
    }
  });

  it("knows only torch's dtypes", () => {
    expect(torchDType("numpy", "float32")).toBeUndefined();
    expect(torchDType("torch", "Tensor")).toBeUndefined();
  });
});
