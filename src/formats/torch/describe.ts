import { PyGlobal, type PyValue } from "../pickle/values.js";

/** A short description of a value for error messages: what a handler got instead of what it wanted. */
export function describe(value: PyValue | undefined): string {
  if (value === undefined) return "missing";
  if (value === null) return "None";
  if (typeof value === "string") return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
    return String(value);
  }
  if (value instanceof Uint8Array) return `bytes (${value.length})`;
  if (Array.isArray(value))
    return `a ${Object.isFrozen(value) ? "tuple" : "list"} of ${value.length}`;
  if (value instanceof Map) return "a dict";
  if (value instanceof Set) return "a set";
  if (value instanceof PyGlobal) return value.qualifiedName;
  return `a ${value.pyClass}`;
}
