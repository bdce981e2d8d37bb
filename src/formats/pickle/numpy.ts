import { asFlag, asShape, badArguments, isCount, pyTypeName } from "./handler-args.js";
import type { Buildable, CallContext, GlobalHandler } from "./types.js";
import { isTuple, PyGlobal, type PyObjectLike, type PyValue } from "./values.js";

/**
 * numpy arrays, dtypes and scalars as pickled by numpy 1.x and 2.x, rebuilt as inert data from
 * the arguments and BUILD states numpy's own __reduce__ writes. Element bytes are returned
 * little-endian whatever order they were written in.
 */

const NUMERIC_NAMES: Readonly<Record<string, string>> = {
  b1: "bool",
  i1: "int8",
  i2: "int16",
  i4: "int32",
  i8: "int64",
  u1: "uint8",
  u2: "uint16",
  u4: "uint32",
  u8: "uint64",
  f2: "float16",
  f4: "float32",
  f8: "float64",
  f12: "float96",
  f16: "float128",
  c8: "complex64",
  c16: "complex128",
  c24: "complex192",
  c32: "complex256",
};

const BYTE_ORDERS = new Set(["<", ">", "|", "="]);

/** A numpy dtype: `numpy.dtype(code, align, copy)` completed by its BUILD state. */
export class NumpyDtype implements PyObjectLike, Buildable {
  readonly pyClass = "numpy.dtype";
  /** One of numpy's kind characters: b i u f c O U S V M m. */
  readonly kind: string;
  /** `<`, `>`, `|` (not applicable) or `=` (native, before BUILD says otherwise). */
  byteOrder = "=";
  /** Bytes per element. */
  itemSize: number;
  /** Field names of a structured dtype. */
  names: readonly PyValue[] | undefined = undefined;
  /** `{name: (dtype, offset[, title])}` of a structured dtype. */
  fields: PyValue | undefined = undefined;
  /** The (base dtype, shape) of a subarray dtype. */
  subarray: PyValue | undefined = undefined;
  /** datetime64 / timedelta64 unit, e.g. "ns". */
  unit: string | undefined = undefined;

  private constructor(
    /** The type code numpy pickled, e.g. `f4`, `U5`, `V16`, `M8`. */
    readonly code: string,
    kind: string,
    itemSize: number,
  ) {
    this.kind = kind;
    this.itemSize = itemSize;
  }

  /** The dtype of a pickled type code, or undefined when numpy would not write that code. */
  static fromCode(code: string): NumpyDtype | undefined {
    const match = /^([biufcOUSVMm])(\d{0,9})$/.exec(code);
    if (!match) return undefined;
    const kind = match[1]!;
    const count = match[2] === "" ? 0 : Number(match[2]);
    return new NumpyDtype(code, kind, kind === "U" ? count * 4 : kind === "O" ? 8 : count);
  }

  /** numpy's name, little-endian: `float32`, `bool`, `object`, `<U5`, `|S3`, `datetime64[ns]`. */
  get name(): string {
    const kind = this.kind;
    if (kind === "O") return "object";
    if (kind === "U") return `<U${this.itemSize / 4}`;
    if (kind === "S" || kind === "V") return `|${kind}${this.itemSize}`;
    if (kind === "M" || kind === "m") {
      const base = kind === "M" ? "datetime64" : "timedelta64";
      return this.unit ? `${base}[${this.unit}]` : base;
    }
    return NUMERIC_NAMES[`${kind}${this.itemSize}`] ?? `${kind}${this.itemSize}`;
  }

  /** Size of the units whose bytes a big-endian file stores reversed (1: nothing to swap). */
  get swapUnit(): number {
    if (this.byteOrder !== ">") return 1;
    switch (this.kind) {
      case "i":
      case "u":
      case "f":
      case "M":
      case "m":
        return this.itemSize;
      case "c":
        return this.itemSize / 2;
      case "U":
        return 4;
      default:
        return 1;
    }
  }

  /** numpy's dtype state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]). */
  setState(state: PyValue, context: CallContext): void {
    if (!isTuple(state) || state.length < 2 || typeof state[0] !== "number") {
      throw badArguments(context, `dtype state must be a tuple, got ${pyTypeName(state)}`);
    }
    const byteOrder = state[1];
    if (typeof byteOrder !== "string" || !BYTE_ORDERS.has(byteOrder)) {
      throw badArguments(context, `dtype byte order must be one of < > | =`);
    }
    this.byteOrder = byteOrder;
    if (state.length < 7) return;
    this.subarray = state[2] ?? undefined;
    const names = state[3];
    if (Array.isArray(names)) this.names = names;
    this.fields = state[4] ?? undefined;
    const elementSize = state[5];
    if (isCount(elementSize)) this.itemSize = elementSize;
    const metadata = state[8];
    if ((this.kind === "M" || this.kind === "m") && isTuple(metadata)) {
      const unitInfo = metadata[1];
      const unit = isTuple(unitInfo) ? unitInfo[0] : undefined;
      if (typeof unit === "string") this.unit = unit;
      else if (unit instanceof Uint8Array) this.unit = String.fromCharCode(...unit);
    }
  }
}

/** Element bytes little-endian: a swapped copy when the file wrote them big-endian. */
function littleEndian(bytes: Uint8Array, dtype: NumpyDtype): Uint8Array {
  const unit = dtype.swapUnit;
  if (unit <= 1) return bytes;
  const copy = bytes.slice();
  for (let i = 0; i + unit <= copy.length; i += unit) copy.subarray(i, i + unit).reverse();
  return copy;
}

/** py2 pickles hold byte buffers as str; loadout decoded those from UTF-8, which re-encodes exactly. */
function asBuffer(value: PyValue | undefined): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return new TextEncoder().encode(value);
  return undefined;
}

function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/**
 * A numpy array: dtype name (see NumpyDtype.name), shape, whether the data is in Fortran
 * (column-major) order, and the elements: little-endian bytes, or the list of values of an
 * object array.
 */
export class NumpyArray implements PyObjectLike, Buildable {
  dtype: string;
  descr: NumpyDtype;
  shape: number[] = [0];
  fortranOrder = false;
  data: Uint8Array | PyValue[] = new Uint8Array(0);

  constructor(
    /** `numpy.ndarray`, or the numpy subclass pickled (`numpy.matrix`...). */
    readonly pyClass = "numpy.ndarray",
  ) {
    this.descr = NumpyDtype.fromCode("i1")!;
    this.dtype = this.descr.name;
  }

  /** ndarray.__setstate__: ([version,] shape, dtype, is_fortran, rawdata). */
  setState(state: PyValue, context: CallContext): void {
    if (!isTuple(state) || (state.length !== 4 && state.length !== 5)) {
      throw badArguments(context, `array state must be a 4- or 5-tuple, got ${pyTypeName(state)}`);
    }
    const [shape, dtype, fortran, raw] = state.length === 5 ? state.slice(1) : state;
    this.fill(context, shape, dtype, asFlag(fortran), raw);
  }

  /** Checks and takes the parts of an array, as numpy does before accepting them. */
  fill(
    context: CallContext,
    shapeValue: PyValue | undefined,
    dtype: PyValue | undefined,
    fortranOrder: boolean | undefined,
    raw: PyValue | undefined,
  ): void {
    const shape = asShape(shapeValue);
    if (!shape) throw badArguments(context, "array shape must be a tuple of non-negative ints");
    if (!(dtype instanceof NumpyDtype)) {
      throw badArguments(context, `array dtype must be a numpy.dtype, got ${pyTypeName(dtype)}`);
    }
    if (fortranOrder === undefined) throw badArguments(context, "array order flag must be a bool");
    const count = elementCount(shape);
    if (!Number.isSafeInteger(count))
      throw badArguments(context, `array shape [${shape}] is too large`);
    if (dtype.kind === "O") {
      if (!Array.isArray(raw) || isTuple(raw as unknown) || raw.length !== count) {
        throw badArguments(context, `object array of ${count} elements needs a list of them`);
      }
      this.data = raw;
    } else {
      const bytes = asBuffer(raw);
      if (!bytes) throw badArguments(context, `array data must be bytes, got ${pyTypeName(raw)}`);
      if (bytes.length !== count * dtype.itemSize) {
        throw badArguments(
          context,
          `array data holds ${bytes.length} bytes but [${shape}] of ${dtype.name} needs ${count * dtype.itemSize}`,
        );
      }
      this.data = littleEndian(bytes, dtype);
    }
    this.shape = shape;
    this.descr = dtype;
    this.dtype = dtype.name;
    this.fortranOrder = fortranOrder;
  }
}

/** A numpy scalar (np.float32(1.5), ...): its dtype and its one element's bytes (or object). */
export class NumpyScalar implements PyObjectLike {
  readonly pyClass = "numpy.generic";
  readonly dtype: string;

  constructor(
    readonly descr: NumpyDtype,
    /** The element, little-endian; the value itself for an object scalar. */
    readonly data: Uint8Array | PyValue,
  ) {
    this.dtype = descr.name;
  }

  /** The value of a bool, integer or float32/float64 scalar; undefined for other kinds. */
  get value(): boolean | number | bigint | undefined {
    const { data, descr } = this;
    if (!(data instanceof Uint8Array)) return undefined;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const key = `${descr.kind}${descr.itemSize}`;
    switch (key) {
      case "b1":
        return data[0] !== 0;
      case "i1":
        return view.getInt8(0);
      case "i2":
        return view.getInt16(0, true);
      case "i4":
        return view.getInt32(0, true);
      case "i8":
        return view.getBigInt64(0, true);
      case "u1":
        return view.getUint8(0);
      case "u2":
        return view.getUint16(0, true);
      case "u4":
        return view.getUint32(0, true);
      case "u8":
        return view.getBigUint64(0, true);
      case "f4":
        return view.getFloat32(0, true);
      case "f8":
        return view.getFloat64(0, true);
      default:
        return undefined;
    }
  }
}

function isNumpyClass(value: PyValue | undefined): value is PyGlobal {
  return (
    value instanceof PyGlobal && (value.module === "numpy" || value.module.startsWith("numpy."))
  );
}

/** `numpy.core.multiarray._reconstruct(cls, (0,), b'b')`: an empty array BUILD fills in. */
const reconstruct: GlobalHandler = {
  call(args, context) {
    const cls = args[0];
    if (args.length !== 3 || !isNumpyClass(cls)) {
      throw badArguments(context, "expected (numpy.ndarray or a numpy subclass, shape, typecode)");
    }
    return new NumpyArray(
      cls.qualifiedName === "numpy.ndarray" ? "numpy.ndarray" : cls.qualifiedName,
    );
  },
};

/** `numpy.dtype(code, align, copy)`: BUILD then sets byte order, fields and size. */
const dtype: GlobalHandler = {
  call(args, context) {
    const code = args[0];
    if (args.length < 1 || args.length > 3 || typeof code !== "string") {
      throw badArguments(context, "expected (type code, align, copy)");
    }
    const result = NumpyDtype.fromCode(code);
    if (!result) throw badArguments(context, `unsupported numpy dtype code '${code}'`);
    return result;
  },
};

/** `numpy.core.multiarray.scalar(dtype, bytes)` (or `(dtype, object)` for an object scalar). */
const scalar: GlobalHandler = {
  call(args, context) {
    const [descr, raw] = args;
    if (args.length < 1 || args.length > 2 || !(descr instanceof NumpyDtype)) {
      throw badArguments(context, "expected (numpy.dtype, data)");
    }
    if (descr.kind === "O") return new NumpyScalar(descr, raw ?? null);
    const bytes = asBuffer(raw);
    if (!bytes || bytes.length !== descr.itemSize) {
      throw badArguments(context, `a ${descr.name} scalar needs ${descr.itemSize} bytes`);
    }
    return new NumpyScalar(descr, littleEndian(bytes, descr));
  },
};

/** `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)`: protocol 5's in-band arrays. */
const frombuffer: GlobalHandler = {
  call(args, context) {
    const [buffer, descr, shape, order] = args;
    if (args.length !== 4 || (order !== "C" && order !== "F")) {
      throw badArguments(context, "expected (buffer, numpy.dtype, shape, 'C' or 'F')");
    }
    if (descr instanceof NumpyDtype && descr.kind === "O") {
      throw badArguments(context, "object arrays have no buffer");
    }
    const array = new NumpyArray();
    array.fill(context, shape, descr, order === "F", buffer);
    return array;
  },
};

/** The numpy globals loadout rebuilds, under numpy 1.x (`numpy.core`) and 2.x (`numpy._core`) names. */
export const NUMPY_HANDLERS: ReadonlyMap<string, GlobalHandler> = new Map([
  ["numpy.core.multiarray._reconstruct", reconstruct],
  ["numpy._core.multiarray._reconstruct", reconstruct],
  ["numpy.core.multiarray.scalar", scalar],
  ["numpy._core.multiarray.scalar", scalar],
  ["numpy.core.numeric._frombuffer", frombuffer],
  ["numpy._core.numeric._frombuffer", frombuffer],
  ["numpy.dtype", dtype],
]);
