import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { formatPath, listTensors } from "../../src/checkpoint/tree.js";
import type { PyValue } from "../../src/formats/pickle/values.js";
import { MemorySource } from "../../src/io/byte-source.js";
import { Tensor } from "../../src/tensors/tensor.js";

const storage = {
  source: new MemorySource(new Uint8Array(16)),
  dtype: "float32" as const,
  bigEndian: false,
};
const tensor = () => new Tensor({ storage, shape: [2] });

describe("tensor paths at every depth", () => {
  it("lists each tensor with its full path, in document order", () => {
    const t = Array.from({ length: 6 }, tensor);
    // Depths 1 to 6: a dict, a list, and dicts inside them.
    const root: PyValue = new Map<PyValue, PyValue>([
      ["a", t[0]!],
      [
        "b",
        [
          t[1]!,
          new Map<PyValue, PyValue>([
            [3, t[2]!],
            ["c", [new Map<PyValue, PyValue>([["d", [t[3]!, new Map([["e", t[4]!]])]]])]],
          ]),
        ],
      ],
      ["f", t[5]!],
    ]);
    const listed = listTensors(root);
    expect(listed.map((entry) => entry.path)).toEqual([
      ["a"],
      ["b", 0],
      ["b", 1, 3],
      ["b", 1, "c", 0, "d", 0],
      ["b", 1, "c", 0, "d", 1, "e"],
      ["f"],
    ]);
    expect(listed.map((entry) => entry.tensor)).toEqual(t);
    expect(formatPath(listed[4]!.path)).toBe("b/1/c/0/d/1/e");
  });

  it("gives sibling tensors separate path arrays", () => {
    const root: PyValue = new Map<PyValue, PyValue>([["x", [tensor(), tensor()]]]);
    const [first, second] = listTensors(root);
    expect(first!.path).toEqual(["x", 0]);
    expect(second!.path).toEqual(["x", 1]);
    expect(first!.path).not.toBe(second!.path);
  });

  it("gives the same path array each time it is asked, and shows it in JSON and the console", () => {
    const t = tensor();
    const root: PyValue = new Map<PyValue, PyValue>([["x", new Map([["y", t]])]]);
    const [entry] = listTensors(root);
    expect(entry!.path).toBe(entry!.path);
    expect(entry!.path).toEqual(["x", "y"]);
    const { path, tensor: listed } = entry!;
    expect({ path, tensor: listed }).toEqual({ path: ["x", "y"], tensor: t });
    expect(JSON.parse(JSON.stringify(entry)).path).toEqual(["x", "y"]);
    expect(inspect(entry)).toContain("path: [ 'x', 'y' ]");
  });

  it("lists a bare tensor at the root with the empty path", () => {
    const t = tensor();
    expect(listTensors(t).map((entry) => entry.path)).toEqual([[]]);
  });
});
