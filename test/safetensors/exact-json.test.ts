import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/errors.js";
import { type JsonValue, parseExactJson } from "../../src/formats/json/exact-json.js";
import { jsonPointer, pointerSegments } from "../../src/formats/json/pointer.js";
import { stringifyJson } from "../../src/formats/json/stringify-json.js";
import { firstInvalidUtf8, utf8OffsetOf } from "../../src/formats/json/utf8.js";

/** What JSON.parse gives, with objects as Maps (JSON.parse is the RFC 8259 reference here). */
function toExact(value: unknown): JsonValue {
  if (Array.isArray(value)) return value.map(toExact);
  if (value !== null && typeof value === "object") {
    return new Map(Object.entries(value).map(([k, v]) => [k, toExact(v)]));
  }
  return value as JsonValue;
}

/** Our result with bigints rounded as JSON.parse rounds them (to the nearest double). */
function asDoubles(value: JsonValue): JsonValue {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(asDoubles);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, asDoubles(v)]));
  return value;
}

function errorOf(text: string, options = {}): FormatError {
  try {
    parseExactJson(text, options);
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    return error as FormatError;
  }
  throw new Error(`parsed: ${text}`);
}

describe("parseExactJson: values", () => {
  it("parses every kind of value, objects as Maps in document order", () => {
    const value = parseExactJson('{"z":1,"a":[true,false,null,"s",-2.5e-3,{}],"m":{"k":[]}}');
    expect(value).toEqual(
      new Map<string, JsonValue>([
        ["z", 1],
        ["a", [true, false, null, "s", -0.0025, new Map()]],
        ["m", new Map([["k", []]])],
      ]),
    );
    expect([...(value as Map<string, JsonValue>).keys()]).toEqual(["z", "a", "m"]);
  });

  it("keeps integers beyond 2^53 exact as bigint", () => {
    expect(parseExactJson("[2, 9007199254740993, 0]")).toEqual([2, 9007199254740993n, 0]);
    expect(parseExactJson("9007199254740991")).toBe(9007199254740991);
    expect(parseExactJson("-9007199254740991")).toBe(-9007199254740991);
    expect(parseExactJson("9007199254740992")).toBe(9007199254740992n);
    expect(parseExactJson("-9007199254740993")).toBe(-9007199254740993n);
    expect(parseExactJson("18446744073709551615")).toBe(2n ** 64n - 1n);
    expect(parseExactJson("000".slice(2))).toBe(0);
  });

  it("round-trips any integer exactly", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }), (n) => {
        const parsed = parseExactJson(n.toString());
        const safe = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER);
        expect(parsed).toBe(safe ? Number(n) : n);
      }),
    );
  });

  it("parses non-integers as numbers, correctly rounded", () => {
    expect(parseExactJson("0.1")).toBe(0.1);
    expect(parseExactJson("1e3")).toBe(1000);
    expect(parseExactJson("1E+2")).toBe(100);
    expect(parseExactJson("2.5e-324")).toBe(5e-324);
    expect(Object.is(parseExactJson("-0"), -0)).toBe(true);
    expect(Object.is(parseExactJson("-0.0"), -0)).toBe(true);
  });

  it("agrees with JSON.parse on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(asDoubles(parseExactJson(text))).toEqual(toExact(JSON.parse(text)));
      }),
      { numRuns: 500 },
    );
  });

  it("decodes every escape, including surrogate pairs", () => {
    expect(parseExactJson(String.raw`"\" \\ \/ \b \f \n \r \t"`)).toBe('" \\ / \b \f \n \r \t');
    expect(parseExactJson(String.raw`"\u00e9\u00E9\u0000\uffff"`)).toBe("éé\u0000\uffff");
    expect(parseExactJson(String.raw`"x\ud83d\ude00y"`)).toBe("x😀y");
    expect(parseExactJson('"😀 é \u007f"')).toBe("😀 é \u007f");
    expect(parseExactJson(String.raw`{"a\u002fb":1}`)).toEqual(new Map([["a/b", 1]]));
  });

  it("keeps keys such as __proto__ as plain data", () => {
    const value = parseExactJson('{"__proto__":{"polluted":true},"constructor":1}');
    expect([...(value as Map<string, JsonValue>).keys()]).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("accepts exactly the RFC's whitespace around and between tokens", () => {
    expect(parseExactJson(' \t\n\r{ "a" : [ 1 , 2 ] } \r\n\t ')).toEqual(new Map([["a", [1, 2]]]));
    for (const ws of ["\u00a0", "\f", "\v", "\u2028", "\ufeff"]) {
      expect(errorOf(`${ws}{}`).code).toBe("JSON_SYNTAX");
      expect(errorOf(`{}${ws}`).code).toBe("JSON_SYNTAX");
    }
  });
});

describe("parseExactJson: refusals", () => {
  it("refuses malformed text with JSON_SYNTAX", () => {
    const bad = [
      "",
      " ",
      "{",
      "[1,]",
      '{"a":1,}',
      "[1 2]",
      '{"a" 1}',
      "{1:2}",
      "{'a':1}",
      "01",
      "-",
      "1.",
      ".5",
      "+1",
      "1e",
      "1e+",
      "NaN",
      "Infinity",
      "-Infinity",
      "tru",
      "nul",
      "True",
      "1e400",
      '"abc',
      String.raw`"\x"`,
      String.raw`"\u12"`,
      String.raw`"\u12G4"`,
      String.raw`"\ud800"`,
      String.raw`"\ud800\u0041"`,
      String.raw`"\udc00"`,
      String.raw`"\ud800x"`,
      '"\ud800"',
      '"\udc00\ud800"',
      `"${"9".repeat(500)}`,
      "9".repeat(500),
    ];
    for (const text of bad) expect(errorOf(text).code, text).toBe("JSON_SYNTAX");
  });

  it("refuses control characters inside strings", () => {
    for (let c = 0; c < 0x20; c++) {
      const error = errorOf(`["a${String.fromCharCode(c)}"]`);
      expect(error.code).toBe("JSON_SYNTAX");
      expect(error.offset).toBe(3);
    }
  });

  it("refuses trailing garbage after the value", () => {
    for (const text of ["{} x", "{}{}", "1 2", '"a""b"', "[]]", "null,"]) {
      expect(errorOf(text).what, text).toMatch(/after the JSON value/);
    }
  });

  it("refuses duplicate keys, naming the key and where it is", () => {
    const text = '{"a":{"b":1,"c":2,"b":3}}';
    const error = errorOf(text, { file: "h.json", baseOffset: 8 });
    expect(error.code).toBe("JSON_DUPLICATE_KEY");
    expect(error.what).toBe('duplicate key "b"');
    expect(error.key).toBe("/a/b");
    expect(error.file).toBe("h.json");
    expect(error.offset).toBe(8 + text.lastIndexOf('"b"'));
    expect(error.message).toContain("h.json");
    expect(errorOf('[{"x":1},{"x":1,"x":2}]').key).toBe("/1/x");
    expect(errorOf('{"":1,"":2}').key).toBe("/");
  });

  it("limits nesting depth without recursing", () => {
    const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
    expect(() => parseExactJson(nested(64))).not.toThrow();
    expect(errorOf(nested(65)).code).toBe("JSON_TOO_DEEP");
    expect(errorOf(nested(65)).offset).toBe(64);
    expect(errorOf(`${'{"a":'.repeat(65)}1${"}".repeat(65)}`).code).toBe("JSON_TOO_DEEP");
    // A million open brackets: refused at the limit, no stack overflow.
    expect(errorOf("[".repeat(1_000_000)).code).toBe("JSON_TOO_DEEP");
    // With the limit lifted, depth costs heap, not call stack.
    const deep = 200_000;
    let value = parseExactJson(nested(deep), { maxDepth: deep });
    let depth = 0;
    while (Array.isArray(value) && value.length > 0) {
      value = value[0]!;
      depth++;
    }
    expect(depth).toBe(deep - 1);
    expect(errorOf("[[1]]", { maxDepth: 1 }).code).toBe("JSON_TOO_DEEP");
  });

  it("refuses floats and -0 when only integers are allowed", () => {
    for (const text of ["1.0", "1e0", "1E2", "-0", "-0.0", "0.5"]) {
      const error = errorOf(`{"shape":[2,${text}]}`, { integersOnly: true });
      expect(error.code).toBe("JSON_NOT_INTEGER");
      expect(error.key).toBe("/shape/1");
      expect(error.offset).toBe(12);
    }
    expect(parseExactJson("[0,-1,18446744073709551615]", { integersOnly: true })).toEqual([
      0,
      -1,
      2n ** 64n - 1n,
    ]);
  });

  it("reports offsets in UTF-8 bytes, not UTF-16 units", () => {
    // "é" is 2 bytes and "😀" 4: the stray x is at byte 1 + 2 + 4 + 1 + 1.
    expect(errorOf('"é😀" x').offset).toBe(9);
  });
});

describe("parseExactJson: scale", () => {
  it("parses a large header-like document (100,000 entries) exactly", () => {
    const parts: string[] = [];
    for (let k = 0; k < 100_000; k++) {
      parts.push(
        `"layer.${k}.weight":{"dtype":"F32","shape":[${k},3],"data_offsets":[${k * 12},${(k + 1) * 12}]}`,
      );
    }
    const text = `{${parts.join(",")}}`;
    const value = parseExactJson(text) as Map<string, Map<string, JsonValue>>;
    expect(value.size).toBe(100_000);
    expect(value.get("layer.99999.weight")!.get("data_offsets")).toEqual([1_199_988, 1_200_000]);
  });
});

describe("json helpers", () => {
  it("writes and reads JSON Pointers (RFC 6901)", () => {
    expect(jsonPointer([])).toBe("");
    expect(jsonPointer(["a/b", "m~n", 0])).toBe("/a~1b/m~0n/0");
    expect(pointerSegments("/a~1b/m~0n/0")).toEqual(["a/b", "m~n", "0"]);
    expect(pointerSegments("")).toEqual([]);
    expect(pointerSegments("/")).toEqual([""]);
  });

  it("stringifies parsed values as JSON.stringify does, bigints exactly", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(stringifyJson(parseExactJson(text))).toBe(JSON.stringify(JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
    expect(stringifyJson(parseExactJson('{"n":18446744073709551615,"m":[-0]}'))).toBe(
      '{"n":18446744073709551615,"m":[0]}',
    );
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    expect(stringifyJson(parseExactJson(deep, { maxDepth: 100_000 }))).toBe(deep);
  });

  it("measures UTF-8 offsets and finds the first invalid UTF-8 byte", () => {
    const text = "aé€😀b";
    for (let i = 0; i <= text.length; i++) {
      if (i === 4) continue; // inside the surrogate pair
      expect(utf8OffsetOf(text, i)).toBe(new TextEncoder().encode(text.slice(0, i)).length);
    }
    const valid = new TextEncoder().encode(text);
    expect(firstInvalidUtf8(valid)).toBe(-1);
    const cases: [number[], number][] = [
      [[0x61, 0xff], 1],
      [[0x61, 0xc0, 0xaf], 1], // overlong '/'
      [[0xe0, 0x80, 0xaf], 0], // overlong
      [[0xed, 0xa0, 0x80], 0], // UTF-16 surrogate
      [[0xf4, 0x90, 0x80, 0x80], 0], // past U+10FFFF
      [[0x61, 0x62, 0xe2, 0x82], 2], // truncated
      [[0x80], 0], // lone continuation
    ];
    for (const [bytes, at] of cases) {
      expect(firstInvalidUtf8(new Uint8Array(bytes))).toBe(at);
      expect(() =>
        new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes)),
      ).toThrow();
    }
  });
});
