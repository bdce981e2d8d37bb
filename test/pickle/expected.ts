import { isByteArray, isFrozenSet } from "../../src/formats/pickle/markers.js";
import { NumpyArray, NumpyScalar } from "../../src/formats/pickle/numpy.js";
import { isTuple, OpaqueObject, PyComplex } from "../../src/formats/pickle/values.js";

/**
 * Compares an unpickled value with the JSON description test/fixtures/pickle/generate.py wrote
 * from the original Python object (see that script for the encoding). Returns the first
 * difference as "path: what", or undefined when they match; `{"ref": n}` must be the very
 * object marked `"id": n` earlier.
 */

// biome-ignore lint/suspicious/noExplicitAny: JSON written by Python.
type Expected = any;

export function mismatch(actual: unknown, expected: Expected): string | undefined {
  return compare(actual, expected, "$", new Map());
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

function parseFloatText(text: string): number {
  if (text === "nan") return Number.NaN;
  if (text === "inf") return Number.POSITIVE_INFINITY;
  if (text === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

function describe(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return `bytes ${hex(value)}`;
  if (typeof value === "object" && value !== null) return value.constructor.name;
  return JSON.stringify(value) ?? String(value);
}

function compareAll(
  actual: readonly unknown[],
  expected: Expected[],
  path: string,
  ids: Map<number, unknown>,
): string | undefined {
  if (actual.length !== expected.length) {
    return `${path}: ${actual.length} items, expected ${expected.length}`;
  }
  for (let i = 0; i < expected.length; i++) {
    const found = compare(actual[i], expected[i], `${path}[${i}]`, ids);
    if (found) return found;
  }
  return undefined;
}

/** Set members in any order: each expected member must match a distinct actual one. */
function compareSet(
  actual: Set<unknown>,
  expected: Expected[],
  path: string,
  ids: Map<number, unknown>,
): string | undefined {
  if (actual.size !== expected.length)
    return `${path}: ${actual.size} members, expected ${expected.length}`;
  const unused = [...actual];
  for (const member of expected) {
    const index = unused.findIndex((candidate) => !compare(candidate, member, path, new Map(ids)));
    if (index < 0) return `${path}: no member matches ${JSON.stringify(member)}`;
    compare(unused[index], member, path, ids);
    unused.splice(index, 1);
  }
  return undefined;
}

function compare(
  actual: unknown,
  expected: Expected,
  path: string,
  ids: Map<number, unknown>,
): string | undefined {
  if ("ref" in expected) {
    return ids.get(expected.ref) === actual
      ? undefined
      : `${path}: not the same object as id ${expected.ref}`;
  }
  if ("id" in expected) ids.set(expected.id, actual);
  const [kind] = Object.keys(expected).filter((key) => key !== "id");
  const want = expected[kind!];
  const fail = (what: string) => `${path}: ${what}, got ${describe(actual)}`;
  switch (kind) {
    case "value":
      return Object.is(actual, want) ? undefined : fail(`expected ${JSON.stringify(want)}`);
    case "int": {
      const big = BigInt(want);
      const safe = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER);
      if (safe) return actual === Number(big) ? undefined : fail(`expected number ${want}`);
      return actual === big ? undefined : fail(`expected bigint ${want}`);
    }
    case "float":
      return Object.is(actual, parseFloatText(want)) ? undefined : fail(`expected float ${want}`);
    case "complex":
      return actual instanceof PyComplex &&
        Object.is(actual.real, parseFloatText(want[0])) &&
        Object.is(actual.imag, parseFloatText(want[1]))
        ? undefined
        : fail(`expected complex ${want}`);
    case "bytes":
    case "bytearray":
      if (!(actual instanceof Uint8Array)) return fail(`expected ${kind}`);
      if (isByteArray(actual) !== (kind === "bytearray")) return fail(`expected ${kind}`);
      return hex(actual) === want ? undefined : fail(`expected ${kind} ${want}`);
    case "list":
      if (!Array.isArray(actual) || isTuple(actual)) return fail("expected a list");
      return compareAll(actual, want, path, ids);
    case "tuple":
      if (!isTuple(actual)) return fail("expected a tuple");
      return compareAll(actual, want, path, ids);
    case "dict": {
      if (!(actual instanceof Map)) return fail("expected a dict (Map)");
      return compareAll([...actual].flat(), want.flat(), `${path}{}`, ids);
    }
    case "set":
    case "frozenset":
      if (!(actual instanceof Set) || isFrozenSet(actual) !== (kind === "frozenset")) {
        return fail(`expected a ${kind}`);
      }
      return compareSet(actual, want, path, ids);
    case "ndarray": {
      if (!(actual instanceof NumpyArray)) return fail("expected a NumpyArray");
      if (actual.dtype !== want.dtype)
        return fail(`expected dtype ${want.dtype}, got ${actual.dtype}`);
      if (actual.shape.join() !== want.shape.join()) return fail(`expected shape [${want.shape}]`);
      if (actual.fortranOrder !== want.fortran)
        return fail(`expected fortranOrder ${want.fortran}`);
      if (typeof want.data === "string") {
        return actual.data instanceof Uint8Array && hex(actual.data) === want.data
          ? undefined
          : fail(`expected data ${want.data}`);
      }
      return compare(actual.data, want.data, `${path}.data`, ids);
    }
    case "npscalar":
      if (!(actual instanceof NumpyScalar)) return fail("expected a NumpyScalar");
      if (actual.dtype !== want.dtype)
        return fail(`expected dtype ${want.dtype}, got ${actual.dtype}`);
      return actual.data instanceof Uint8Array && hex(actual.data) === want.data
        ? undefined
        : fail(`expected data ${want.data}`);
    case "opaque": {
      if (!(actual instanceof OpaqueObject)) return fail("expected an OpaqueObject");
      if (actual.pyClass !== want.class) return fail(`expected class ${want.class}`);
      return (
        compareAll(actual.args, want.args, `${path}.args`, ids) ??
        compare(actual.state ?? null, want.state, `${path}.state`, ids) ??
        (want.kwargs ? compare(actual.kwargs, want.kwargs, `${path}.kwargs`, ids) : undefined) ??
        (want.listItems
          ? compareAll(actual.listItems ?? [], want.listItems, `${path}.listItems`, ids)
          : undefined) ??
        (want.dictItems
          ? compareAll(
              [...(actual.dictItems ?? [])].flat(),
              want.dictItems.flat(),
              `${path}.dictItems`,
              ids,
            )
          : undefined)
      );
    }
    default:
      return `${path}: unknown expectation ${JSON.stringify(expected)}`;
  }
}
