import type { Checkpoint } from "../checkpoint/checkpoint.js";
import { formatPath } from "../checkpoint/tree.js";
import { TensorError, UnsupportedFormatError } from "../errors.js";
import { openCheckpointFile } from "../node.js";
import { canConvert } from "../tensors/convert.js";
import { type DType, dtypeInfo, type TypedArray } from "../tensors/dtype.js";
import { formatShape, sameShape } from "../tensors/shape.js";
import type { Tensor } from "../tensors/tensor.js";
import { formatCount, formatNumber, jsonNumber, renderTable } from "./format.js";
import { parseNonNegative } from "./output.js";

/**
 * `loadout diff A B`: which keys only one file has, which differ in shape or dtype, and how far
 * apart the values of the others are. Values are compared in float64, streaming both tensors
 * chunk by chunk. Two elements a, b are within tolerance when |a − b| ≤ atol + rtol·max(|a|, |b|)
 * (default atol = rtol = 0: exactly equal); NaN equals NaN, and NaN against a number is a
 * difference of "nan".
 */

export interface DiffOptions {
  json?: boolean;
  atol?: string;
  rtol?: string;
  /** Compare every tensor of the tree by path, not only the model state dict. */
  all?: boolean;
  strict?: boolean;
  allowGlobal?: string[];
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** How far apart two tensors of one shape are. */
export interface ValueDiff {
  /** Largest |a − b|; NaN when a NaN met a number; null when the values cannot be decoded. */
  maxAbs: number | null;
  /** Largest |a − b| / max(|a|, |b|) (0 where both are 0). */
  maxRel: number | null;
  /** Every element within tolerance. */
  equal: boolean;
}

export interface TensorDiff extends ValueDiff {
  key: string;
}

export interface DiffReport {
  a: string;
  b: string;
  tolerance: Tolerance;
  equal: boolean;
  onlyInA: string[];
  onlyInB: string[];
  shapeMismatches: { key: string; a: number[]; b: number[] }[];
  dtypeMismatches: { key: string; a: DType; b: DType }[];
  /** Every tensor both hold with one shape, in A's order. */
  tensors: TensorDiff[];
}

/** Running maxima over the elements seen so far. */
interface Accumulator {
  maxAbs: number;
  maxRel: number;
  within: boolean;
}

/** Folds one pair of elements (already known to differ) into `acc`. */
function addDifference(acc: Accumulator, abs: number, scale: number, rel: number, tol: Tolerance) {
  if (Number.isNaN(abs)) {
    acc.maxAbs = Number.NaN;
    acc.maxRel = Number.NaN;
    acc.within = false;
    return;
  }
  if (abs > acc.maxAbs) acc.maxAbs = abs;
  if (rel > acc.maxRel) acc.maxRel = rel;
  if (!(abs <= tol.atol + tol.rtol * scale)) acc.within = false;
}

/**
 * |x − y| / max(|x|, |y|) for x ≠ y (`abs` = |x − y|, `scale` = max(|x|, |y|)). When x − y
 * overflowed, from x/scale − y/scale instead; an infinite side makes it 1, or 2 for +∞ against −∞.
 */
function relative(x: number, y: number, abs: number, scale: number): number {
  if (scale === Number.POSITIVE_INFINITY) {
    return Number.isFinite(x) || Number.isFinite(y) ? 1 : 2;
  }
  return Number.isFinite(abs) ? abs / scale : Math.abs(x / scale - y / scale);
}

function compareReal(a: Float64Array, b: Float64Array, acc: Accumulator, tol: Tolerance): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    const xNaN = Number.isNaN(x);
    const yNaN = Number.isNaN(y);
    if (xNaN || yNaN) {
      if (!(xNaN && yNaN)) addDifference(acc, Number.NaN, 0, Number.NaN, tol);
      continue;
    }
    const abs = Math.abs(x - y);
    const scale = Math.max(Math.abs(x), Math.abs(y));
    addDifference(acc, abs, scale, relative(x, y, abs, scale), tol);
  }
}

/** 64-bit integers, exactly: float64 cannot hold every int64. */
function compareBigInt(
  a: BigInt64Array | BigUint64Array,
  b: BigInt64Array | BigUint64Array,
  acc: Accumulator,
  tol: Tolerance,
): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    const difference = x > y ? x - y : y - x;
    const fx = Number(x);
    const fy = Number(y);
    const scale = Math.max(Math.abs(fx), Math.abs(fy));
    addDifference(acc, Number(difference), scale, Number(difference) / scale, tol);
  }
}

/** Interleaved (real, imaginary) pairs; the distance is the modulus of the difference. */
function compareComplex(
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  acc: Accumulator,
  tol: Tolerance,
): void {
  const same = (x: number, y: number) => x === y || (Number.isNaN(x) && Number.isNaN(y));
  for (let i = 0; i + 1 < a.length; i += 2) {
    const [ar, ai, br, bi] = [a[i]!, a[i + 1]!, b[i]!, b[i + 1]!];
    if (same(ar, br) && same(ai, bi)) continue;
    const abs = Math.hypot(ar - br, ai - bi);
    const scale = Math.max(Math.hypot(ar, ai), Math.hypot(br, bi));
    const rel = scale === Number.POSITIVE_INFINITY ? 1 : abs / scale;
    addDifference(acc, abs, scale, rel, tol);
  }
}

/**
 * Pairs of equally long pieces of two element streams (their chunks may be cut differently when
 * the dtypes differ). Each piece is valid until the next is asked for.
 */
async function* alignedChunks(
  a: AsyncIterable<TypedArray>,
  b: AsyncIterable<TypedArray>,
  key: string,
): AsyncGenerator<[TypedArray, TypedArray]> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let ca: TypedArray | undefined;
  let cb: TypedArray | undefined;
  let oa = 0;
  let ob = 0;
  for (;;) {
    if (ca === undefined || oa === ca.length) {
      const next = await ia.next();
      ca = next.done ? undefined : next.value;
      oa = 0;
      if (ca === undefined) break;
      continue;
    }
    if (cb === undefined || ob === cb.length) {
      const next = await ib.next();
      cb = next.done ? undefined : next.value;
      ob = 0;
      if (cb === undefined) break;
      continue;
    }
    const n = Math.min(ca.length - oa, cb.length - ob);
    yield [ca.subarray(oa, oa + n), cb.subarray(ob, ob + n)];
    oa += n;
    ob += n;
  }
  const leftover = async (chunk: TypedArray | undefined, offset: number, rest: typeof ia) =>
    chunk !== undefined && (offset < chunk.length || !(await rest.next()).done);
  if ((await leftover(ca, oa, ia)) || (await leftover(cb, ob, ib))) {
    throw new TensorError(
      "TENSOR_SIZE_MISMATCH",
      "the two tensors gave different numbers of elements",
      { key },
    );
  }
}

/** How `a` and `b` (same shape) differ, streaming both; see the module comment for the rules. */
export async function compareTensors(
  a: Tensor,
  b: Tensor,
  tolerance: Tolerance,
  key = "",
): Promise<ValueDiff> {
  const acc: Accumulator = { maxAbs: 0, maxRel: 0, within: true };
  const kindA = dtypeInfo(a.dtype).kind;
  if (a.dtype === b.dtype && (kindA === "raw" || kindA === "complex")) {
    const raw = kindA === "raw";
    for await (const [x, y] of alignedChunks(a.chunks(), b.chunks(), key)) {
      if (!raw) compareComplex(x as Float64Array, y as Float64Array, acc, tolerance);
      else if (!sameBytes(x as Uint8Array, y as Uint8Array))
        return { maxAbs: null, maxRel: null, equal: false };
    }
    return finish(acc);
  }
  if (!canConvert(a.dtype, "float64") || !canConvert(b.dtype, "float64")) {
    return { maxAbs: null, maxRel: null, equal: false };
  }
  if (a.dtype === b.dtype && (a.dtype === "int64" || a.dtype === "uint64")) {
    for await (const [x, y] of alignedChunks(a.chunks(), b.chunks(), key)) {
      compareBigInt(x as BigInt64Array, y as BigInt64Array, acc, tolerance);
    }
    return finish(acc);
  }
  const asFloat64 = { dtype: "float64" } as const;
  for await (const [x, y] of alignedChunks(a.chunks(asFloat64), b.chunks(asFloat64), key)) {
    compareReal(x as Float64Array, y as Float64Array, acc, tolerance);
  }
  return finish(acc);
}

function finish(acc: Accumulator): ValueDiff {
  return { maxAbs: acc.maxAbs, maxRel: acc.maxRel, equal: acc.within };
}

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** The tensors to compare, by state dict key (or by tree path with `all`). */
function tensorsOf(checkpoint: Checkpoint, all: boolean): Map<string, Tensor> {
  if (all) {
    return new Map(checkpoint.tensors().map(({ path, tensor }) => [formatPath(path), tensor]));
  }
  const stateDict = checkpoint.stateDict();
  if (!stateDict) {
    throw new UnsupportedFormatError("NO_STATE_DICT", "no model state dict found to compare", {
      file: checkpoint.name,
      hint: "Compare every tensor of the two files by path with --all.",
    });
  }
  return stateDict.tensors;
}

export async function diffCheckpoints(
  a: Checkpoint,
  b: Checkpoint,
  tolerance: Tolerance,
  all = false,
): Promise<DiffReport> {
  const tensorsA = tensorsOf(a, all);
  const tensorsB = tensorsOf(b, all);
  const report: DiffReport = {
    a: a.name,
    b: b.name,
    tolerance,
    equal: true,
    onlyInA: [...tensorsA.keys()].filter((key) => !tensorsB.has(key)),
    onlyInB: [...tensorsB.keys()].filter((key) => !tensorsA.has(key)),
    shapeMismatches: [],
    dtypeMismatches: [],
    tensors: [],
  };
  for (const [key, x] of tensorsA) {
    const y = tensorsB.get(key);
    if (!y) continue;
    if (x.dtype !== y.dtype) report.dtypeMismatches.push({ key, a: x.dtype, b: y.dtype });
    if (!sameShape(x.shape, y.shape)) {
      report.shapeMismatches.push({ key, a: [...x.shape], b: [...y.shape] });
      continue;
    }
    report.tensors.push({ key, ...(await compareTensors(x, y, tolerance, key)) });
  }
  report.equal =
    report.onlyInA.length === 0 &&
    report.onlyInB.length === 0 &&
    report.shapeMismatches.length === 0 &&
    report.dtypeMismatches.length === 0 &&
    report.tensors.every((t) => t.equal);
  return report;
}

/** The `--json` document. Non-finite numbers as "nan", "inf"; null where values cannot be decoded. */
export function diffJson(report: DiffReport): unknown {
  const number = (value: number | null) => (value === null ? null : jsonNumber(value));
  return {
    equal: report.equal,
    onlyInA: report.onlyInA,
    onlyInB: report.onlyInB,
    shapeMismatches: report.shapeMismatches,
    dtypeMismatches: report.dtypeMismatches,
    tensors: report.tensors.map((t) => ({
      key: t.key,
      maxAbs: number(t.maxAbs),
      maxRel: number(t.maxRel),
      equal: t.equal,
    })),
  };
}

/** Rows of each list shown in the human view; --json has them all. */
const ROWS_SHOWN = 30;

/** Largest difference first; NaN (a NaN met a number) and undecodable values before any number. */
function byDifference(x: TensorDiff, y: TensorDiff): number {
  const rank = (t: TensorDiff) =>
    t.maxAbs === null || Number.isNaN(t.maxAbs) ? Number.POSITIVE_INFINITY : t.maxAbs;
  return rank(y) - rank(x) || (y.maxRel ?? 0) - (x.maxRel ?? 0) || (x.key < y.key ? -1 : 1);
}

/** A titled table, its first `ROWS_SHOWN` rows. */
function section(
  lines: string[],
  title: string,
  header: string[] | undefined,
  rows: string[][],
  right: ReadonlySet<number> = new Set(),
): void {
  if (rows.length === 0) return;
  lines.push("", `${title} (${formatCount(rows.length)}):`);
  const shown = rows.slice(0, ROWS_SHOWN);
  const table = header ? [header, ...shown] : shown;
  lines.push(
    ...renderTable(
      table.map(([first, ...rest]) => [`  ${first}`, ...rest]),
      right,
    ),
  );
  if (rows.length > ROWS_SHOWN) {
    lines.push(`  ... and ${formatCount(rows.length - ROWS_SHOWN)} more (--json lists them all)`);
  }
}

export function renderDiff(report: DiffReport): string {
  const show = (value: number | null) => (value === null ? "undecodable" : formatNumber(value));
  const lines = [`A: ${report.a}`, `B: ${report.b}`];
  const keys = (list: string[]) => list.map((key) => [key]);
  section(lines, "Only in A", undefined, keys(report.onlyInA));
  section(lines, "Only in B", undefined, keys(report.onlyInB));
  const shapes = report.shapeMismatches.map((m) => [m.key, formatShape(m.a), formatShape(m.b)]);
  section(lines, "Shapes differ", ["key", "A", "B"], shapes);
  const dtypes = report.dtypeMismatches.map((m) => [m.key, m.a, m.b]);
  section(lines, "Dtypes differ", ["key", "A", "B"], dtypes);
  const differing = report.tensors.filter((t) => !t.equal).sort(byDifference);
  section(
    lines,
    "Values differ, largest difference first",
    ["key", "max abs", "max rel"],
    differing.map((t) => [t.key, show(t.maxAbs), show(t.maxRel)]),
    new Set([1, 2]),
  );
  const { atol, rtol } = report.tolerance;
  const tolerance = atol === 0 && rtol === 0 ? "exactly" : `within atol ${atol}, rtol ${rtol}`;
  const common = report.tensors.length;
  const mismatches = report.shapeMismatches.length + report.dtypeMismatches.length;
  lines.push(
    "",
    `${report.equal ? "Equal" : "Different"}: ${formatCount(common - differing.length)} of ` +
      `${formatCount(common)} tensors compared are equal ${tolerance}; ` +
      `${formatCount(report.onlyInA.length)} only in A, ${formatCount(report.onlyInB.length)} only in B, ` +
      `${formatCount(mismatches)} shape/dtype mismatch(es).`,
  );
  return lines.join("\n");
}

/** Runs the comparison; the caller exits 1 when `equal` is false. */
export async function runDiffCommand(
  fileA: string,
  fileB: string,
  options: DiffOptions,
): Promise<{ text: string; equal: boolean }> {
  const tolerance = {
    atol: options.atol === undefined ? 0 : parseNonNegative(options.atol, "--atol"),
    rtol: options.rtol === undefined ? 0 : parseNonNegative(options.rtol, "--rtol"),
  };
  const open = (file: string) =>
    openCheckpointFile(file, {
      strict: options.strict === true,
      allowGlobals: options.allowGlobal ?? [],
    });
  const a = await open(fileA);
  try {
    const b = await open(fileB);
    try {
      const report = await diffCheckpoints(a, b, tolerance, options.all === true);
      const text = options.json ? JSON.stringify(diffJson(report)) : renderDiff(report);
      return { text, equal: report.equal };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}
