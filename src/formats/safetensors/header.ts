import { FormatError, SafetensorsError } from "../../errors.js";
import { type DType, dtypeFromSafetensors, dtypeInfo } from "../../tensors/dtype.js";
import { type JsonObject, type JsonValue, parseExactJson } from "../json/exact-json.js";
import { pointerSegments } from "../json/pointer.js";
import { firstInvalidUtf8, utf8OffsetOf } from "../json/utf8.js";
import { RUST_DTYPE_ORDER } from "./dtype-names.js";

/**
 * The safetensors header, checked by every rule of the reference implementation (the Rust
 * crate's `SafeTensors::read_metadata`, `Metadata::validate` and `TryFrom<HashMetadata>`), in
 * the same order, so a file gets the same verdict here as there. Each failure is a
 * SafetensorsError whose `code` is the Rust error variant's name.
 *
 * File layout: 8-byte little-endian length n, n bytes of UTF-8 JSON, then the data section,
 * which the tensors' `data_offsets` must tile exactly, in order, with no gap and nothing after.
 */

/** Rust's MAX_HEADER_SIZE. */
export const MAX_HEADER_SIZE = 100_000_000;
/** Bytes of the length prefix. */
export const LENGTH_PREFIX_BYTES = 8;

/** The dtype names the Rust crate's `Dtype` enum knows; anything else fails to deserialize. */
const RUST_DTYPES: ReadonlySet<string> = new Set(RUST_DTYPE_ORDER);

const TENSOR_FIELDS = ["dtype", "shape", "data_offsets"];
const U64_MAX = (1n << 64n) - 1n;

export interface SafetensorsTensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** `[begin, end)` in bytes, relative to the start of the data section. */
  dataOffsets: readonly [number, number];
}

export interface SafetensorsHeader {
  /** n: bytes of JSON after the length prefix. */
  headerLength: number;
  /** 8 + n: file offset where the data section starts. */
  dataStart: number;
  /** In the order the header lists them. */
  tensors: SafetensorsTensorEntry[];
  /** `__metadata__`, when present. */
  metadata: Readonly<Record<string, string>> | undefined;
}

/**
 * A usize from the header: a number up to 2^53 − 1, a bigint beyond (the parser's rule, so one
 * value always has one type and `===` compares values). Arithmetic stays in numbers while it is
 * exact, so a header of a million tensors is checked without a million BigInts.
 */
type Usize = number | bigint;

/** A tensor entry that has the right shape of JSON, before its offsets are validated. */
interface Candidate {
  name: string;
  dtype: DType;
  /** safetensors' dtype name, for messages. */
  dtypeName: string;
  shape: Usize[];
  begin: Usize;
  end: Usize;
}

/** File offset of a top-level header entry, or undefined. */
type Locate = (name: string) => number | undefined;

const CORRUPT_HEADER = "The header is corrupt, or the file was not written as safetensors.";
const CORRUPT_LAYOUT =
  "The header does not describe the file's data: it is corrupt or was crafted.";

/** What to do about each rule's failure. */
const HINTS: Record<string, string> = {
  HeaderTooSmall: "The file is empty or truncated.",
  HeaderTooLarge: "This is not a safetensors file, or its first 8 bytes are corrupt.",
  InvalidHeaderLength: "The file is truncated, or it is not a safetensors file.",
  InvalidHeader: CORRUPT_HEADER,
  InvalidHeaderDeserialization: CORRUPT_HEADER,
  InvalidMetadata: CORRUPT_HEADER,
  DuplicateTensorName:
    "The reference reader would silently keep the last one; loadout does not guess.",
  InvalidOffset: CORRUPT_LAYOUT,
  ValidationOverflow: CORRUPT_LAYOUT,
  MisalignedSlice: CORRUPT_LAYOUT,
  TensorInvalidInfo: CORRUPT_LAYOUT,
  MetadataIncompleteBuffer:
    "The file is truncated, or has bytes after the last tensor (a polyglot file?); re-download it.",
};

function headerError(
  code: string,
  what: string,
  file: string | undefined,
  key?: string,
  offset?: number,
  cause?: unknown,
): SafetensorsError {
  return new SafetensorsError(code, what, { file, key, offset, hint: HINTS[code], cause });
}

/**
 * Reads n from a file's first 8 bytes (HeaderTooSmall, HeaderTooLarge, InvalidHeaderLength).
 * `first` may be longer; `fileSize` is the whole file's.
 */
export function readHeaderLength(first: Uint8Array, fileSize: number, file?: string): number {
  if (fileSize < LENGTH_PREFIX_BYTES || first.length < LENGTH_PREFIX_BYTES) {
    throw headerError(
      "HeaderTooSmall",
      `file of ${fileSize} bytes is too small for a safetensors header (needs 8 bytes of length)`,
      file,
      undefined,
      0,
    );
  }
  const n = new DataView(first.buffer, first.byteOffset, LENGTH_PREFIX_BYTES).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw headerError(
      "HeaderTooLarge",
      `header length ${n} exceeds the limit of ${MAX_HEADER_SIZE} bytes`,
      file,
      undefined,
      0,
    );
  }
  const length = Number(n);
  if (LENGTH_PREFIX_BYTES + length > fileSize) {
    throw headerError(
      "InvalidHeaderLength",
      `header length ${length} runs past the end of the file (${fileSize} bytes)`,
      file,
      undefined,
      0,
    );
  }
  return length;
}

/** Checks a whole header given the file's first 8 + n (or more) bytes and the file's size. */
export function parseSafetensorsHeader(
  prefix: Uint8Array,
  fileSize: number,
  file?: string,
): SafetensorsHeader {
  const n = readHeaderLength(prefix, fileSize, file);
  if (prefix.length < LENGTH_PREFIX_BYTES + n) {
    throw headerError(
      "InvalidHeaderLength",
      `only ${prefix.length} bytes given for a header of ${n}`,
      file,
      undefined,
      0,
    );
  }
  return decodeHeaderJson(
    prefix.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + n),
    fileSize,
    file,
  );
}

/**
 * Checks the n bytes of header JSON (everything after the length prefix): UTF-8, JSON, the
 * entries, the offsets, and that the data section ends exactly at `fileSize`.
 */
export function decodeHeaderJson(
  json: Uint8Array,
  fileSize: number,
  file?: string,
): SafetensorsHeader {
  const n = json.length;
  const text = decodeUtf8(json, file);
  const root = parseHeaderText(text, file);
  if (!(root instanceof Map)) {
    throw headerError(
      "InvalidHeaderDeserialization",
      `header is not a JSON object but ${describeJson(root)}`,
      file,
      undefined,
      LENGTH_PREFIX_BYTES,
    );
  }
  const locate = locator(text);
  const metadata = readMetadata(root.get("__metadata__"), locate, file);
  const candidates: Candidate[] = [];
  for (const [name, entry] of root) {
    if (name !== "__metadata__") candidates.push(readEntry(name, entry, locate, file));
  }

  const dataEnd = validateOffsets(candidates, locate, file);
  const dataBytes = fileSize - LENGTH_PREFIX_BYTES - n;
  if (dataEnd !== dataBytes) {
    throw headerError(
      "MetadataIncompleteBuffer",
      `tensor data ends at byte ${dataEnd} of the data section but the file has ${dataBytes} data bytes`,
      file,
      undefined,
      LENGTH_PREFIX_BYTES + n,
    );
  }
  return {
    headerLength: n,
    dataStart: LENGTH_PREFIX_BYTES + n,
    tensors: candidates.map((candidate) => representable(candidate, locate, file)),
    metadata,
  };
}

function decodeUtf8(json: Uint8Array, file: string | undefined): string {
  try {
    // ignoreBOM keeps a byte-order mark in the text, so JSON parsing refuses it as Rust does.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    throw headerError(
      "InvalidHeader",
      "header is not valid UTF-8",
      file,
      undefined,
      LENGTH_PREFIX_BYTES + Math.max(firstInvalidUtf8(json), 0),
    );
  }
}

function parseHeaderText(text: string, file: string | undefined): JsonValue {
  try {
    // Every number a valid header holds is a usize: floats and -0 fail as they do in serde.
    return parseExactJson(text, { file, baseOffset: LENGTH_PREFIX_BYTES, integersOnly: true });
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    const path = pointerSegments(error.key ?? "");
    const tensor = path[0];
    let code = "InvalidHeaderDeserialization";
    if (tensor === "__metadata__") code = "InvalidMetadata";
    else if (error.code === "JSON_DUPLICATE_KEY" && path.length === 1) code = "DuplicateTensorName";
    const what =
      code === "DuplicateTensorName"
        ? `tensor name ${JSON.stringify(tensor)} appears twice in the header`
        : `invalid JSON in header: ${error.what}${error.key ? ` at ${error.key}` : ""}`;
    throw headerError(code, what, file, tensor, error.offset, error);
  }
}

/**
 * Offsets are only needed for errors, and measuring one costs a pass over the text, so the text
 * is parsed again, recording positions, the first time an error asks.
 */
function locator(text: string): Locate {
  let positions: Map<JsonObject | JsonValue[], number> | undefined;
  let root: JsonObject | undefined;
  return (name) => {
    if (positions === undefined || root === undefined) {
      positions = new Map();
      root = parseExactJson(text, { integersOnly: true, positions }) as JsonObject;
    }
    const value = root.get(name);
    const position =
      value instanceof Map || Array.isArray(value) ? positions.get(value) : undefined;
    return position === undefined ? undefined : LENGTH_PREFIX_BYTES + utf8OffsetOf(text, position);
  };
}

function readMetadata(
  value: JsonValue | undefined,
  locate: Locate,
  file: string | undefined,
): Readonly<Record<string, string>> | undefined {
  // serde reads `null` as an absent Option.
  if (value === undefined || value === null) return undefined;
  const bad = (what: string) =>
    headerError("InvalidMetadata", what, file, "__metadata__", locate("__metadata__"));
  if (!(value instanceof Map)) {
    throw bad(`__metadata__ must be an object of strings, not ${describeJson(value)}`);
  }
  const entries: [string, string][] = [];
  for (const [key, item] of value) {
    if (typeof item !== "string") {
      throw bad(
        `__metadata__ value for ${JSON.stringify(key)} must be a string, not ${describeJson(item)}`,
      );
    }
    entries.push([key, item]);
  }
  // fromEntries defines own properties, so a key like "__proto__" stays plain data.
  return Object.freeze(Object.fromEntries(entries));
}

/** Checks one tensor entry is `{"dtype": known, "shape": [usize...], "data_offsets": [usize, usize]}`. */
function readEntry(
  name: string,
  entry: JsonValue,
  locate: Locate,
  file: string | undefined,
): Candidate {
  const bad = (what: string) =>
    headerError("InvalidHeaderDeserialization", `tensor entry ${what}`, file, name, locate(name));
  if (!(entry instanceof Map)) throw bad(`must be an object, not ${describeJson(entry)}`);
  for (const field of entry.keys()) {
    if (!TENSOR_FIELDS.includes(field)) throw bad(`has unknown field ${JSON.stringify(field)}`);
  }
  for (const field of TENSOR_FIELDS) {
    if (!entry.has(field)) throw bad(`is missing "${field}"`);
  }
  const dtypeName = entry.get("dtype");
  if (typeof dtypeName !== "string") {
    throw bad(`dtype must be a string, not ${describeJson(dtypeName)}`);
  }
  const dtype = RUST_DTYPES.has(dtypeName) ? dtypeFromSafetensors(dtypeName) : undefined;
  if (dtype === undefined) throw bad(`has unknown dtype ${JSON.stringify(dtypeName)}`);
  const shape = readUsizes(entry.get("shape"));
  if (shape === undefined) {
    throw bad("shape must be an array of non-negative integers below 2^64");
  }
  const offsets = readUsizes(entry.get("data_offsets"));
  if (offsets?.length !== 2) {
    throw bad("data_offsets must be two non-negative integers below 2^64");
  }
  return { name, dtype, dtypeName, shape, begin: offsets[0]!, end: offsets[1]! };
}

/** The values of a JSON array of integers in [0, 2^64), or undefined if it is not one. */
function readUsizes(value: JsonValue | undefined): Usize[] | undefined {
  if (!Array.isArray(value)) return undefined;
  for (const item of value) {
    if (
      typeof item === "number" ? item < 0 : typeof item !== "bigint" || item < 0n || item > U64_MAX
    ) {
      return undefined;
    }
  }
  return value as Usize[];
}

/** A bigint as a Usize: a number when it is safe. */
function usize(value: bigint): Usize {
  return value <= Number.MAX_SAFE_INTEGER ? Number(value) : value;
}

/** numel × bits of `shape`, or undefined when either product overflows u64 (Rust's checked_mul). */
function bitsOf(shape: readonly Usize[], bits: number): Usize | undefined {
  let numel: Usize = 1;
  for (const dim of shape) {
    if (typeof numel === "number" && typeof dim === "number") {
      // A double product at most 2^53 − 1 is exact; past it, BigInt takes over.
      const product: number = numel * dim;
      if (product <= Number.MAX_SAFE_INTEGER) {
        numel = product;
        continue;
      }
    }
    const exact: bigint = BigInt(numel) * BigInt(dim);
    if (exact > U64_MAX) return undefined;
    numel = exact;
  }
  if (typeof numel === "number" && numel * bits <= Number.MAX_SAFE_INTEGER) return numel * bits;
  const total = BigInt(numel) * BigInt(bits);
  return total > U64_MAX ? undefined : usize(total);
}

/**
 * Rust's `Metadata::validate`: sorted by data_offsets, each tensor must start where the previous
 * ended and take exactly numel × bits / 8 bytes. Returns where the data ends.
 */
function validateOffsets(
  candidates: readonly Candidate[],
  locate: Locate,
  file: string | undefined,
): Usize {
  // A stable sort by (begin, end), as Rust's sort_by_key on the tuple. `<` compares a number
  // and a bigint exactly.
  const sorted = [...candidates].sort((a, b) =>
    a.begin < b.begin ? -1 : a.begin > b.begin ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0,
  );
  let start: Usize = 0;
  for (const t of sorted) {
    const error = (code: string, what: string) =>
      headerError(code, what, file, t.name, locate(t.name));
    if (t.begin !== start || t.end < t.begin) {
      throw error(
        "InvalidOffset",
        `data_offsets [${t.begin}, ${t.end}] do not continue from the previous tensor's end (${start}); tensors must tile the data section in order with no gaps or overlaps`,
      );
    }
    start = t.end;
    const bits = bitsOf(t.shape, dtypeInfo(t.dtype).bits);
    if (bits === undefined) {
      throw error(
        "ValidationOverflow",
        `size of ${t.dtypeName} tensor of shape [${t.shape.join(", ")}] overflows 64 bits`,
      );
    }
    if (typeof bits === "number" ? bits % 8 !== 0 : bits % 8n !== 0n) {
      throw error(
        "MisalignedSlice",
        `shape [${t.shape.join(", ")}] of ${t.dtypeName} takes ${bits} bits, which is not a whole number of bytes`,
      );
    }
    const size = typeof bits === "number" ? bits / 8 : usize(bits / 8n);
    const held =
      typeof t.begin === "number" && typeof t.end === "number"
        ? t.end - t.begin
        : usize(BigInt(t.end) - BigInt(t.begin));
    if (held !== size) {
      throw error(
        "TensorInvalidInfo",
        `dtype ${t.dtypeName} and shape [${t.shape.join(", ")}] need ${size} bytes but data_offsets [${t.begin}, ${t.end}] hold ${held}`,
      );
    }
  }
  return start;
}

/**
 * Past validation every offset is below the file size, but a zero-element tensor may still have
 * a dimension (or a row-major stride) no double holds exactly: refuse it rather than round it.
 */
function representable(
  t: Candidate,
  locate: Locate,
  file: string | undefined,
): SafetensorsTensorEntry {
  let stride = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    const dim = t.shape[d]!;
    // Rust accepts these; loadout's shapes and strides are doubles, so it cannot.
    // stride × dim is the next stride, except at d = 0, where it is numel (zero here).
    const next = typeof dim === "number" ? stride * dim : Number.POSITIVE_INFINITY;
    if (typeof dim !== "number" || (d > 0 && next > Number.MAX_SAFE_INTEGER)) {
      throw headerError(
        "ValidationOverflow",
        `shape [${t.shape.join(", ")}] has a dimension or stride beyond 2^53, which loadout cannot represent exactly`,
        file,
        t.name,
        locate(t.name),
      );
    }
    stride = next;
  }
  return {
    name: t.name,
    dtype: t.dtype,
    shape: t.shape as number[],
    dataOffsets: [t.begin as number, t.end as number],
  };
}

function describeJson(value: JsonValue | undefined): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (value instanceof Map) return "an object";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "boolean") return `${value}`;
  return `the number ${value}`;
}
