import { TensorError, WriteError } from "../errors.js";
import { RUST_DTYPE_ORDER } from "../formats/safetensors/dtype-names.js";
import { MAX_HEADER_SIZE } from "../formats/safetensors/header.js";
import { canConvert } from "../tensors/convert.js";
import { byteLengthOf, type DType, dtypeInfo, isDType, isFloating } from "../tensors/dtype.js";
import { formatShape } from "../tensors/shape.js";
import type { TensorLike } from "../tensors/tensor-like.js";

/**
 * Where everything goes in a safetensors file, decided before a byte is written: every name,
 * dtype and shape is checked, every tensor gets its data_offsets, and the header is encoded.
 *
 * The output follows the reference serializer (the Rust crate's `prepare`/`serialize`): the
 * header is compact JSON with `__metadata__` first, padded with spaces to a multiple of 8 bytes
 * so the data section starts aligned; by default tensors are sorted as it sorts them.
 */

/** Named tensors: a Map, or any iterable of [name, tensor] pairs (names must be unique). */
export type TensorEntries = Iterable<readonly [string, TensorLike]>;

/**
 * - `"safetensors"` (default): as the reference serializer, by descending dtype (its `Dtype`
 *   enum order, widest first) then by name in code-point order. Every tensor's data then starts
 *   at a multiple of its element size, and the file is byte-identical to `safetensors.serialize`.
 * - `"given"`: in the order the entries come.
 */
export type TensorOrder = "safetensors" | "given";

export interface LayoutOptions {
  /** Written as `__metadata__` (an empty object is written as `{}`, as the reference does). */
  metadata?: Readonly<Record<string, string>>;
  /** Convert every floating-point tensor to this floating dtype (float64, float32, float16 or bfloat16). */
  dtype?: DType;
  order?: TensorOrder;
}

/** A tensor checked and ready to be placed. */
export interface PreparedTensor {
  name: string;
  tensor: TensorLike;
  /** The dtype written: the tensor's own, or the conversion target. */
  dtype: DType;
  shape: readonly number[];
  /** Bytes of data, numel × bits / 8. */
  byteLength: number;
}

export interface PlacedTensor extends PreparedTensor {
  /** `[begin, end)` in the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsLayout {
  /** In file order. */
  tensors: PlacedTensor[];
  /** The 8-byte length prefix and the padded header JSON: everything before the data. */
  header: Uint8Array;
  dataBytes: number;
  totalBytes: number;
}

/** Rank of each dtype the reference crate knows (its serializer sorts by it, descending); it has no C128. */
const RUST_DTYPE_RANK: ReadonlyMap<string, number> = new Map(
  RUST_DTYPE_ORDER.map((name, rank) => [name, rank]),
);

/** Checks every entry and converts nothing yet; throws on the first problem. */
export function prepareTensors(entries: TensorEntries, target?: DType): PreparedTensor[] {
  checkTargetDtype(target);
  const seen = new Set<string>();
  const prepared: PreparedTensor[] = [];
  for (const entry of entries) {
    const [name, tensor] = entry;
    checkName(name, seen);
    seen.add(name);
    prepared.push(prepareTensor(name, tensor, target));
  }
  return prepared;
}

/** Places prepared tensors and encodes the header. */
export function layoutSafetensors(
  prepared: readonly PreparedTensor[],
  options: Omit<LayoutOptions, "dtype"> = {},
): SafetensorsLayout {
  const metadata = checkMetadata(options.metadata);
  const ordered =
    (options.order ?? "safetensors") === "safetensors"
      ? [...prepared].sort(referenceOrder)
      : [...prepared];
  const tensors: PlacedTensor[] = [];
  let offset = 0;
  for (const t of ordered) {
    const end = offset + t.byteLength;
    // JSON integers are written from doubles: they must be exact.
    if (!Number.isSafeInteger(end)) {
      throw new WriteError("TOO_LARGE", `tensors up to ${t.name} hold more than 2^53 bytes`, {
        key: t.name,
      });
    }
    tensors.push({ ...t, begin: offset, end });
    offset = end;
  }
  const json = new TextEncoder().encode(headerJson(metadata, tensors));
  // Spaces are JSON whitespace, so the padded header parses the same.
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded > MAX_HEADER_SIZE) {
    throw new WriteError(
      "HeaderTooLarge",
      `header of ${padded} bytes exceeds the safetensors limit of ${MAX_HEADER_SIZE} bytes`,
      { hint: "Readers refuse it: write fewer tensors or less metadata per file (shard it)." },
    );
  }
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { tensors, header, dataBytes: offset, totalBytes: header.byteLength + offset };
}

/** prepareTensors then layoutSafetensors. */
export function planSafetensors(
  entries: TensorEntries,
  options: LayoutOptions = {},
): SafetensorsLayout {
  return layoutSafetensors(prepareTensors(entries, options.dtype), options);
}

function checkTargetDtype(target: DType | undefined): void {
  if (target === undefined) return;
  if (!isDType(target) || dtypeInfo(target).kind !== "float") {
    throw new WriteError("INVALID_DTYPE", `cannot convert floating tensors to ${String(target)}`, {
      hint: "Pass float32, float16, bfloat16 or float64.",
    });
  }
}

/** Names are written as JSON strings of UTF-8: they must be strings without lone surrogates. */
function checkName(name: unknown, seen: ReadonlySet<string>): asserts name is string {
  if (typeof name !== "string") {
    throw new WriteError("INVALID_TENSOR_NAME", `tensor name ${String(name)} is not a string`);
  }
  if (!isWellFormed(name)) {
    throw new WriteError(
      "INVALID_TENSOR_NAME",
      `tensor name ${JSON.stringify(name)} has a lone UTF-16 surrogate, which UTF-8 cannot encode`,
      { key: name },
    );
  }
  if (name === "__metadata__") {
    throw new WriteError(
      "INVALID_TENSOR_NAME",
      "a tensor cannot be named __metadata__: safetensors reserves that key",
      {
        key: name,
        hint: "Rename the tensor.",
      },
    );
  }
  if (seen.has(name)) {
    throw new WriteError("DUPLICATE_TENSOR_NAME", `tensor name appears twice`, {
      key: name,
      hint: "safetensors holds one tensor per name.",
    });
  }
}

function prepareTensor(
  name: string,
  tensor: TensorLike,
  target: DType | undefined,
): PreparedTensor {
  const source = tensor?.dtype;
  if (!isDType(source) || !RUST_DTYPE_RANK.has(dtypeInfo(source).safetensors)) {
    throw new WriteError("UNSUPPORTED_DTYPE", `safetensors has no dtype for ${String(source)}`, {
      key: name,
      hint:
        source === "complex128"
          ? "The reference implementation has no C128; write it as two float64 tensors (real, imaginary)."
          : undefined,
    });
  }
  const dtype = outputDtype(name, source, target);
  const shape = [...tensor.shape];
  if (!shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    throw new TensorError("BAD_SHAPE", `shape ${formatShape(shape)} is not a list of sizes`, {
      key: name,
    });
  }
  let numel = 1;
  for (const dim of shape) numel *= dim;
  const byteLength = Number.isSafeInteger(numel) ? byteLengthOf(dtype, numel) : undefined;
  if (byteLength === undefined || !Number.isSafeInteger(byteLength)) {
    throw new TensorError(
      Number.isSafeInteger(numel) ? "MisalignedSlice" : "TOO_LARGE",
      Number.isSafeInteger(numel)
        ? `${numel} elements of ${dtype} (${dtypeInfo(dtype).bits} bits each) are not a whole number of bytes`
        : `shape ${formatShape(shape)} has more than 2^53 elements`,
      { key: name },
    );
  }
  return { name, tensor, dtype, shape, byteLength };
}

/** Floating tensors convert to the target; integers, booleans and complex tensors stay as they are. */
function outputDtype(name: string, source: DType, target: DType | undefined): DType {
  if (target === undefined || source === target || !isFloating(source)) return source;
  if (!canConvert(source, target)) {
    throw new TensorError("UNSUPPORTED_CONVERSION", `cannot convert ${source} to ${target}`, {
      key: name,
      hint: `loadout does not decode ${source}; write without a dtype, or leave this tensor out.`,
    });
  }
  return target;
}

/** Checks metadata is an object of well-formed strings; returns its entries (undefined when absent). */
export function checkMetadata(
  metadata: Readonly<Record<string, string>> | undefined,
): [string, string][] | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new WriteError("INVALID_METADATA", "metadata must be an object of strings", {
      key: "__metadata__",
    });
  }
  const entries = Object.entries(metadata);
  for (const [key, value] of entries) {
    if (typeof value !== "string") {
      throw new WriteError(
        "INVALID_METADATA",
        `metadata value for ${JSON.stringify(key)} is ${typeof value}, not a string`,
        {
          key: "__metadata__",
          hint: "safetensors metadata maps strings to strings: stringify it.",
        },
      );
    }
    if (!isWellFormed(key) || !isWellFormed(value)) {
      throw new WriteError(
        "INVALID_METADATA",
        `metadata entry ${JSON.stringify(key)} has a lone UTF-16 surrogate, which UTF-8 cannot encode`,
        { key: "__metadata__" },
      );
    }
  }
  return entries;
}

/** Compact JSON as serde_json writes the reference's `Metadata` (JSON.stringify escapes strings the same way). */
function headerJson(
  metadata: readonly [string, string][] | undefined,
  tensors: readonly PlacedTensor[],
): string {
  const members: string[] = [];
  if (metadata !== undefined) {
    const items = metadata.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    members.push(`"__metadata__":{${items.join(",")}}`);
  }
  for (const t of tensors) {
    const dtype = dtypeInfo(t.dtype).safetensors;
    members.push(
      `${JSON.stringify(t.name)}:{"dtype":"${dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${t.begin},${t.end}]}`,
    );
  }
  return `{${members.join(",")}}`;
}

/** Descending dtype rank, then ascending name by code point (Rust compares UTF-8 bytes, which is the same). */
function referenceOrder(a: PreparedTensor, b: PreparedTensor): number {
  const rank = (t: PreparedTensor) => RUST_DTYPE_RANK.get(dtypeInfo(t.dtype).safetensors)!;
  return rank(b) - rank(a) || compareCodePoints(a.name, b.name);
}

/** Orders well-formed strings by code point, not by UTF-16 unit. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Surrogates (U+D800–DFFF, encoding code points past U+FFFF) sort after U+E000–FFFF. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** A UTF-16 surrogate that is not half of a pair (matched per code unit: no `u` flag). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether `text` can be encoded as UTF-8 (String.isWellFormed, which ES2023 lacks). */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}
