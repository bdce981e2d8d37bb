import { PickleError } from "../../errors.js";
import type { CallContext } from "./types.js";
import { isTuple, type PyValue } from "./values.js";

/** Argument checks shared by the builtin global handlers: they get untrusted values. */

export function badArguments(context: CallContext, detail: string): PickleError {
  return new PickleError("BAD_ARGUMENTS", `${context.global}: ${detail}`, {
    file: context.file,
    hint: "The file is corrupt or was not written by the library it claims.",
  });
}

/** Python's type name for a value, for error messages. */
export function pyTypeName(value: PyValue | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "None";
  switch (typeof value) {
    case "boolean":
      return "bool";
    case "number":
      return Number.isInteger(value) ? "int" : "float";
    case "bigint":
      return "int";
    case "string":
      return "str";
  }
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return isTuple(value) ? "tuple" : "list";
  if (value instanceof Map) return "dict";
  if (value instanceof Set) return "set";
  return value.pyClass;
}

/** A non-negative integer that fits a JavaScript number (a dimension, a count). */
export function isCount(value: PyValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** `value` as a list of non-negative integers (a shape), or undefined. */
export function asShape(value: PyValue | undefined): number[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const shape: number[] = [];
  for (const dim of value) {
    if (!isCount(dim)) return undefined;
    shape.push(dim);
  }
  return shape;
}

/** Python truthiness for the booleans pickles spell as bool or 0/1. */
export function asFlag(value: PyValue | undefined): boolean | undefined {
  if (typeof value === "boolean") return value;
  if (value === 0 || value === 1) return value === 1;
  return undefined;
}
