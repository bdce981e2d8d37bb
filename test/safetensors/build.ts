/** Hand-built safetensors files for tests: every byte from the format's layout. */

const encoder = new TextEncoder();

export interface BuildOptions {
  /** Bytes of data after the header (zeros), or the data itself. */
  data?: number | Uint8Array;
  /** Write this in the length prefix instead of the header's real byte length. */
  declaredLength?: bigint;
}

/** 8-byte little-endian n, the n header bytes, then the data. */
export function safetensorsFile(
  header: string | Uint8Array,
  options: BuildOptions = {},
): Uint8Array {
  const headerBytes = typeof header === "string" ? encoder.encode(header) : header;
  const data =
    options.data instanceof Uint8Array ? options.data : new Uint8Array(options.data ?? 0);
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(
    0,
    options.declaredLength ?? BigInt(headerBytes.length),
    true,
  );
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** One tensor entry's JSON text. */
export function entry(
  dtype: string,
  shape: (number | string)[],
  begin: number | string,
  end: number | string,
): string {
  return `{"dtype":"${dtype}","shape":[${shape.join(",")}],"data_offsets":[${begin},${end}]}`;
}

/** A header object's JSON text from name → entry text pairs, in the order given. */
export function header(entries: [string, string][]): string {
  return `{${entries.map(([name, text]) => `${JSON.stringify(name)}:${text}`).join(",")}}`;
}

/** Byte offset in the file of the first occurrence of `needle` in the (ASCII) header text. */
export function fileOffsetOf(headerText: string, needle: string): number {
  const index = headerText.indexOf(needle);
  if (index < 0) throw new Error(`${needle} not in header`);
  return 8 + encoder.encode(headerText.slice(0, index)).length;
}
