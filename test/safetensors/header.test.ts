import { describe, expect, it } from "vitest";
import { SafetensorsError } from "../../src/errors.js";
import {
  MAX_HEADER_SIZE,
  parseSafetensorsHeader,
  readHeaderLength,
  type SafetensorsHeader,
} from "../../src/formats/safetensors/header.js";
import { entry, fileOffsetOf, header, safetensorsFile } from "./build.js";

/**
 * Every rule of the reference validator (safetensors/src/tensor.rs: read_metadata, validate,
 * TryFrom<HashMetadata>), each on a file built byte by byte. Expected codes are the Rust error
 * variants those functions return for the same bytes (cross-checked against the safetensors
 * 0.8.0 Python binding, which wraps that crate); where loadout is stricter it says so.
 */

const FILE = "model.safetensors";

function parse(bytes: Uint8Array): SafetensorsHeader {
  return parseSafetensorsHeader(bytes, bytes.length, FILE);
}

function refusal(bytes: Uint8Array): SafetensorsError {
  try {
    parse(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(SafetensorsError);
    const e = error as SafetensorsError;
    expect(e.file).toBe(FILE);
    expect(e.message).toContain(FILE);
    return e;
  }
  throw new Error("header was accepted");
}

/** A one-tensor file whose data is exactly what the entry claims. */
function oneTensor(
  dtype: string,
  shape: (number | string)[],
  begin: number,
  end: number,
  data = end,
) {
  return safetensorsFile(header([["t", entry(dtype, shape, begin, end)]]), { data });
}

describe("length prefix", () => {
  it("HeaderTooSmall: fewer than 8 bytes", () => {
    for (let size = 0; size < 8; size++) {
      const e = refusal(new Uint8Array(size));
      expect(e.code).toBe("HeaderTooSmall");
      expect(e.offset).toBe(0);
    }
  });

  it("HeaderTooLarge: n above 100,000,000, checked before the file size", () => {
    const json = header([["t", entry("I32", [2, 2], 0, 16)]]);
    for (const n of [100_000_001n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, 18446742974197923900n]) {
      const e = refusal(safetensorsFile(json, { data: 16, declaredLength: n }));
      expect(e.code).toBe("HeaderTooLarge");
      expect(e.what).toContain(n.toString());
    }
  });

  it("InvalidHeaderLength: 8 + n past the end of the file", () => {
    expect(refusal(safetensorsFile("", { declaredLength: 60n })).code).toBe("InvalidHeaderLength");
    // Exactly at the limit is not too large, only too long for this file.
    const atLimit = safetensorsFile("{}", { declaredLength: BigInt(MAX_HEADER_SIZE) });
    expect(refusal(atLimit).code).toBe("InvalidHeaderLength");
    // One byte short.
    expect(refusal(safetensorsFile("{}", { declaredLength: 3n })).code).toBe("InvalidHeaderLength");
  });

  it("readHeaderLength returns n when the file can hold it", () => {
    const file = safetensorsFile("{}  ");
    expect(readHeaderLength(file, file.length)).toBe(4);
    expect(() => readHeaderLength(file.subarray(0, 8), 11)).toThrow(/runs past the end/);
  });
});

describe("header text", () => {
  it("InvalidHeader: not UTF-8, with the offset of the first bad byte", () => {
    const cases: [number[], number][] = [
      [[0xff], 0],
      [[0x7b, 0x22, 0xc0, 0xaf, 0x22], 2],
      [[0x7b, 0xed, 0xa0, 0x80], 1],
      [[0x7b, 0x7d, 0x20, 0xe2, 0x82], 3],
    ];
    for (const [bytes, at] of cases) {
      const e = refusal(safetensorsFile(new Uint8Array(bytes)));
      expect(e.code).toBe("InvalidHeader");
      expect(e.offset).toBe(8 + at);
    }
  });

  it("InvalidHeaderDeserialization: not JSON, or not an object", () => {
    const bad = [
      "",
      "   ",
      "{",
      "[]",
      "null",
      '"x"',
      "{} x",
      "{}{}",
      "\ufeff{}",
      '{"t":1,}',
      '{"a\u0001":{}}',
      String.raw`{"\ud800":{}}`,
    ];
    for (const text of bad) {
      expect(refusal(safetensorsFile(text)).code, JSON.stringify(text)).toBe(
        "InvalidHeaderDeserialization",
      );
    }
  });

  it("JSON errors carry the file offset of the problem", () => {
    const text = '{"t":{"dtype":"U8",}}';
    const e = refusal(safetensorsFile(text));
    expect(e.offset).toBe(8 + text.indexOf("}"));
    expect(e.key).toBe("t");
  });

  it("refuses nesting beyond the parser's limit without overflowing the stack", () => {
    const deep = `{"t":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const e = refusal(safetensorsFile(deep));
    expect(e.code).toBe("InvalidHeaderDeserialization");
    expect(e.what).toMatch(/nesting deeper/);
  });

  it("accepts the whitespace the reference writer pads with, before and after", () => {
    for (const text of [
      "{}\r \t\n",
      "\t\n{}\r ",
      "{}      ",
      ` {"t" : ${entry("U8", [1], 0, 1)} } `,
    ]) {
      const bytes = safetensorsFile(text, { data: text.includes('"t"') ? 1 : 0 });
      expect(() => parse(bytes)).not.toThrow();
    }
  });
});

describe("tensor entries", () => {
  const refuseEntry = (entryText: string, data = 0) =>
    refusal(safetensorsFile(`{"t":${entryText}}`, { data }));

  it("InvalidHeaderDeserialization: wrong JSON types or missing fields", () => {
    const bad = [
      "5",
      "null",
      '"F32"',
      '["U8",[1],[0,1]]',
      '{"shape":[1],"data_offsets":[0,1]}',
      '{"dtype":"U8","data_offsets":[0,1]}',
      '{"dtype":"U8","shape":[1]}',
      '{"dtype":8,"shape":[1],"data_offsets":[0,1]}',
      '{"dtype":{"U8":null},"shape":[1],"data_offsets":[0,1]}',
      '{"dtype":"U8","shape":1,"data_offsets":[0,1]}',
      '{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}',
      '{"dtype":"U8","shape":[1],"data_offsets":{"0":0,"1":1}}',
      '{"dtype":"U8","shape":[1],"data_offsets":[0]}',
      '{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}',
      '{"dtype":"U8","shape":[null],"data_offsets":[0,1]}',
    ];
    for (const text of bad) {
      const e = refuseEntry(text, 1);
      expect(e.code, text).toBe("InvalidHeaderDeserialization");
      expect(e.key, text).toBe("t");
    }
  });

  it("InvalidHeaderDeserialization: unknown dtypes, including C128 which the Rust crate lacks", () => {
    for (const dtype of ["C128", "f32", "FP32", "F8", "Q4", ""]) {
      const e = refuseEntry(entry(dtype, [1], 0, 16), 16);
      expect(e.code).toBe("InvalidHeaderDeserialization");
      expect(e.what).toContain(`unknown dtype "${dtype}"`);
    }
  });

  it("InvalidHeaderDeserialization: negative, fractional, -0 or beyond-u64 shapes and offsets", () => {
    const bad: [string, (number | string)[], string, string][] = [
      ["U8", [-1], "0", "1"],
      ["U8", ["1.0"], "0", "1"],
      ["U8", ["1e0"], "0", "1"],
      ["U8", ["-0"], "0", "0"],
      ["U8", ["0.5"], "0", "1"],
      ["U8", ["18446744073709551616", 0], "0", "0"],
      ["U8", [1], "-0", "1"],
      ["U8", [1], "0", "1.0"],
      ["U8", [1], "-1", "0"],
      ["U8", [0], "18446744073709551616", "18446744073709551616"],
    ];
    for (const [dtype, shape, begin, end] of bad) {
      const e = refuseEntry(entry(dtype, shape, begin, end), 1);
      expect(e.code, `${shape} ${begin} ${end}`).toBe("InvalidHeaderDeserialization");
      expect(e.key).toBe("t");
    }
  });

  it("InvalidHeaderDeserialization: unknown fields (stricter than Rust, which ignores them)", () => {
    const e = refuseEntry('{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}', 1);
    expect(e.code).toBe("InvalidHeaderDeserialization");
    expect(e.what).toContain('unknown field "extra"');
    const text = `{"a":${entry("U8", [1], 0, 1)},"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2],"x":0}}`;
    expect(refusal(safetensorsFile(text, { data: 2 })).offset).toBe(
      fileOffsetOf(text, '{"dtype":"U8","shape":[1],"data_offsets":[1,2]'),
    );
  });

  it("a repeated field inside an entry fails as serde's duplicate field does", () => {
    const e = refuseEntry('{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}', 1);
    expect(e.code).toBe("InvalidHeaderDeserialization");
    expect(e.what).toContain('duplicate key "dtype"');
  });

  it("DuplicateTensorName: a name listed twice (Rust would silently keep the last)", () => {
    const text = header([
      ["w", entry("U8", [1], 0, 1)],
      ["w", entry("U8", [1], 0, 1)],
    ]);
    const e = refusal(safetensorsFile(text, { data: 1 }));
    expect(e.code).toBe("DuplicateTensorName");
    expect(e.key).toBe("w");
    expect(e.offset).toBe(8 + text.lastIndexOf('"w"'));
  });
});

describe("__metadata__", () => {
  it("reads a string → string map, keeping keys such as __proto__ as data", () => {
    const text = '{"__metadata__":{"format":"pt","__proto__":"x","é":"✓"}}';
    const parsed = parse(safetensorsFile(text));
    expect(parsed.metadata).toEqual(
      Object.fromEntries([
        ["format", "pt"],
        ["__proto__", "x"],
        ["é", "✓"],
      ]),
    );
    expect(Object.getPrototypeOf(parsed.metadata)).toBe(Object.prototype);
    expect(Object.keys(parsed.metadata!)).toEqual(["format", "__proto__", "é"]);
  });

  it("treats null as absent, as serde's Option does", () => {
    expect(parse(safetensorsFile('{"__metadata__":null}')).metadata).toBeUndefined();
    expect(parse(safetensorsFile("{}")).metadata).toBeUndefined();
  });

  it("InvalidMetadata: anything but a string → string map", () => {
    const bad = [
      '"pt"',
      "[]",
      "1",
      '{"a":1}',
      '{"a":null}',
      '{"a":["x"]}',
      '{"a":{"b":"c"}}',
      '{"a":"1","a":"2"}',
    ];
    for (const value of bad) {
      const e = refusal(safetensorsFile(`{"__metadata__":${value}}`));
      expect(e.code, value).toBe("InvalidMetadata");
      expect(e.key).toBe("__metadata__");
    }
    expect(refusal(safetensorsFile('{"__metadata__":{},"__metadata__":{}}')).code).toBe(
      "InvalidMetadata",
    );
  });
});

describe("offsets (Metadata::validate)", () => {
  it("InvalidOffset: the first tensor does not start at 0", () => {
    const e = refusal(oneTensor("U8", [1], 1, 2));
    expect(e.code).toBe("InvalidOffset");
    expect(e.key).toBe("t");
  });

  it("InvalidOffset: tensors overlapping (the JSON attack: ten tensors on the same bytes)", () => {
    const entries: [string, string][] = [];
    for (let k = 0; k < 10; k++) entries.push([`weight_${k}`, entry("F32", [2, 2], 0, 16)]);
    const e = refusal(safetensorsFile(header(entries), { data: 16 }));
    expect(e.code).toBe("InvalidOffset");
    // Sorted stably, weight_0 takes [0, 16); weight_1 is the first that does not fit.
    expect(e.key).toBe("weight_1");
  });

  it("InvalidOffset: a gap between tensors, named after sorting by offsets", () => {
    const text = header([
      ["b", entry("U8", [2], 3, 5)],
      ["a", entry("U8", [2], 0, 2)],
    ]);
    const e = refusal(safetensorsFile(text, { data: 5 }));
    expect(e.code).toBe("InvalidOffset");
    expect(e.key).toBe("b");
    expect(e.offset).toBe(fileOffsetOf(text, entry("U8", [2], 3, 5)));
  });

  it("InvalidOffset: end before begin", () => {
    const text = header([
      ["a", entry("U8", [0], 0, 0)],
      ["t", entry("U8", [1], 0, 1)],
      ["u", entry("U8", [0], 1, 0)],
    ]);
    const e = refusal(safetensorsFile(text, { data: 1 }));
    expect(e.code).toBe("InvalidOffset");
    expect(e.key).toBe("u");
  });

  it("ValidationOverflow: numel or numel × bits beyond u64", () => {
    // 2 × (2^64 − 2) and 2 × (2^63 − 1) × 32 bits: the Rust crate's own test cases.
    const big = [
      ["I32", ["2", "18446744073709551614"]],
      ["I32", ["2", "9223372036854775807"]],
      // numel 2^61 fits, × 64 bits does not.
      ["F64", ["2305843009213693952"]],
      // checked_mul stops at the first overflow, before the 0 could rescue it.
      ["U8", ["9223372036854775808", "4", "0"]],
    ] as const;
    for (const [dtype, shape] of big) {
      const e = refusal(oneTensor(dtype, [...shape], 0, 16));
      expect(e.code, shape.join()).toBe("ValidationOverflow");
      expect(e.key).toBe("t");
    }
  });

  it("ValidationOverflow (loadout's own): a dimension or stride no double holds exactly", () => {
    // Valid for Rust (zero elements), but 9007199254740993 would round to ...992.
    for (const shape of [
      ["2", "9007199254740993", "0"],
      ["18446744073709551615", "0"],
      ["0", "1073741824", "1073741824"],
    ]) {
      const e = refusal(oneTensor("U8", shape, 0, 0));
      expect(e.code).toBe("ValidationOverflow");
      expect(e.what).toMatch(/beyond 2\^53/);
    }
    // Huge dimensions are fine while numel stays within u64 and the strides stay exact.
    const shape = [2 ** 40, 2 ** 20, 0];
    expect(parse(oneTensor("U8", shape, 0, 0)).tensors[0]!.shape).toEqual(shape);
  });

  it("MisalignedSlice: sub-byte dtypes that do not fill whole bytes", () => {
    expect(refusal(oneTensor("F4", [3], 0, 2)).code).toBe("MisalignedSlice");
    expect(refusal(oneTensor("F6_E2M3", [1], 0, 1)).code).toBe("MisalignedSlice");
    expect(refusal(oneTensor("F6_E3M2", [2, 3], 0, 3)).code).toBe("MisalignedSlice");
  });

  it("TensorInvalidInfo: byte range not numel × bits / 8", () => {
    // The Rust test: I32 [2, 2] needs 16 bytes, offsets give 4.
    const e = refusal(oneTensor("I32", [2, 2], 0, 4));
    expect(e.code).toBe("TensorInvalidInfo");
    expect(e.what).toContain("need 16 bytes");
    expect(refusal(oneTensor("F4", [1, 2], 0, 2)).code).toBe("TensorInvalidInfo");
    expect(refusal(oneTensor("BOOL", [], 0, 0)).code).toBe("TensorInvalidInfo");
  });

  it("MetadataIncompleteBuffer: data section longer or shorter than the tensors", () => {
    const json = header([["t", entry("I32", [2, 2], 0, 16)]]);
    expect(refusal(safetensorsFile(json, { data: 50 })).code).toBe("MetadataIncompleteBuffer");
    expect(refusal(safetensorsFile(json, { data: 14 })).code).toBe("MetadataIncompleteBuffer");
    expect(refusal(safetensorsFile("{}", { data: 1 })).code).toBe("MetadataIncompleteBuffer");
    const e = refusal(safetensorsFile(json, { data: 14 }));
    expect(e.offset).toBe(8 + json.length);
  });

  it("checks rules in the reference's order: offsets before sizes, sorted tensor by tensor", () => {
    // 'a' (sorted first) has a bad size, 'b' a bad offset: 'a' is reported.
    const text = header([
      ["b", entry("U8", [1], 5, 6)],
      ["a", entry("I32", [1], 0, 3)],
    ]);
    expect(refusal(safetensorsFile(text, { data: 6 })).code).toBe("TensorInvalidInfo");
    // Entry shape errors come before any offset rule.
    const text2 = header([
      ["a", entry("U8", [1], 7, 8)],
      ["b", entry("X", [1], 0, 1)],
    ]);
    expect(refusal(safetensorsFile(text2, { data: 8 })).code).toBe("InvalidHeaderDeserialization");
  });
});

describe("valid headers", () => {
  it("reads entries in header order with offsets relative to the data section", () => {
    const text = `${header([
      ["second", entry("F32", [2], 4, 12)],
      ["first", entry("F32", [], 0, 4)],
      ["empty", entry("I64", [2, 0], 12, 12)],
      ["fp4", entry("F4", [1, 2], 12, 13)],
      ["fp6", entry("F6_E3M2", [4], 13, 16)],
    ])}   `;
    const parsed = parse(safetensorsFile(text, { data: 16 }));
    const n = new TextEncoder().encode(text).length;
    expect(parsed.headerLength).toBe(n);
    expect(parsed.dataStart).toBe(8 + n);
    expect(parsed.metadata).toBeUndefined();
    expect(parsed.tensors).toEqual([
      { name: "second", dtype: "float32", shape: [2], dataOffsets: [4, 12] },
      { name: "first", dtype: "float32", shape: [], dataOffsets: [0, 4] },
      { name: "empty", dtype: "int64", shape: [2, 0], dataOffsets: [12, 12] },
      { name: "fp4", dtype: "float4_e2m1", shape: [1, 2], dataOffsets: [12, 13] },
      { name: "fp6", dtype: "float6_e3m2", shape: [4], dataOffsets: [13, 16] },
    ]);
  });

  it("maps every dtype the Rust crate knows", () => {
    const rust: [string, string, number][] = [
      ["BOOL", "bool", 8],
      ["F4", "float4_e2m1", 4],
      ["F6_E2M3", "float6_e2m3", 6],
      ["F6_E3M2", "float6_e3m2", 6],
      ["U8", "uint8", 8],
      ["I8", "int8", 8],
      ["F8_E5M2", "float8_e5m2", 8],
      ["F8_E4M3", "float8_e4m3fn", 8],
      ["F8_E8M0", "float8_e8m0fnu", 8],
      ["F8_E4M3FNUZ", "float8_e4m3fnuz", 8],
      ["F8_E5M2FNUZ", "float8_e5m2fnuz", 8],
      ["I16", "int16", 16],
      ["U16", "uint16", 16],
      ["F16", "float16", 16],
      ["BF16", "bfloat16", 16],
      ["I32", "int32", 32],
      ["U32", "uint32", 32],
      ["F32", "float32", 32],
      ["C64", "complex64", 64],
      ["F64", "float64", 64],
      ["I64", "int64", 64],
      ["U64", "uint64", 64],
    ];
    let offset = 0;
    const entries: [string, string][] = [];
    for (const [name, , bits] of rust) {
      // 4 elements: whole bytes for every bit width.
      const bytes = (4 * bits) / 8;
      entries.push([name, entry(name, [4], offset, offset + bytes)]);
      offset += bytes;
    }
    const parsed = parse(safetensorsFile(header(entries), { data: offset }));
    expect(parsed.tensors.map((t) => [t.name, t.dtype])).toEqual(rust.map(([n, d]) => [n, d]));
  });

  it("accepts unusual but valid names and zero-sized tensors", () => {
    const text = header([
      ["", entry("U8", [0], 0, 0)],
      ["a\u0000b", entry("U8", [2, 0], 0, 0)],
      ["名前/😀", entry("U8", [1], 0, 1)],
    ]);
    const parsed = parse(safetensorsFile(text, { data: 1 }));
    expect(parsed.tensors.map((t) => t.name)).toEqual(["", "a\u0000b", "名前/😀"]);
  });

  it("accepts a header of many tensors", () => {
    const entries: [string, string][] = [];
    for (let k = 0; k < 20_000; k++)
      entries.push([`w${k}`, entry("F16", [3, 1], k * 6, k * 6 + 6)]);
    const parsed = parse(safetensorsFile(header(entries.reverse()), { data: 20_000 * 6 }));
    expect(parsed.tensors.length).toBe(20_000);
    expect(parsed.tensors[0]).toEqual({
      name: "w19999",
      dtype: "float16",
      shape: [3, 1],
      dataOffsets: [119_994, 120_000],
    });
  });
});
