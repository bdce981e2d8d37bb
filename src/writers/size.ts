import { ConfigError } from "../errors.js";

/**
 * Sizes written as text ("5GB", "500MB", "1.5GiB"), for shard limits.
 *
 * Units follow Hugging Face. huggingface_hub's `parse_size_to_int` reads KB, MB, GB, TB as powers
 * of 1000 (GB = 10^9); transformers' and accelerate's `convert_file_size_to_int` also read KiB,
 * MiB, GiB, TiB as powers of 1024 (GiB = 2^30). A bare number, or "B", is bytes.
 *
 * The two disagree on a lowercase final "b": "5gb" is 5·10^9 bytes to huggingface_hub but
 * 5·10^9 bits to transformers. loadout does not guess, so a decimal unit must end in an uppercase
 * "B" (the prefix may be either case: "kB" is the SI spelling). Binary units are unambiguous and
 * read in any case. A fraction is allowed and the result rounds down to whole bytes as Python's
 * int() does, but exactly: Python multiplies floats (int(4.35 * 10**6) is 4349999), this does not.
 */

const PREFIX_POWER: Readonly<Record<string, number>> = { k: 1, m: 2, g: 3, t: 4, p: 5 };

/** Bytes per unit, or undefined for a unit this does not read. */
function unitBytes(unit: string): bigint | undefined {
  if (unit === "" || unit === "B") return 1n;
  const binary = /^([kmgtp])ib$/i.exec(unit);
  if (binary) return 1024n ** BigInt(PREFIX_POWER[binary[1]!.toLowerCase()]!);
  const decimal = /^([kmgtpKMGTP])B$/.exec(unit);
  if (decimal) return 1000n ** BigInt(PREFIX_POWER[decimal[1]!.toLowerCase()]!);
  return undefined;
}

function sizeError(text: string, problem: string, hint?: string): ConfigError {
  return new ConfigError("INVALID_SIZE", `size ${JSON.stringify(text)} ${problem}`, {
    hint:
      hint ??
      'Write a number and a unit, e.g. "5GB" (10^9 bytes), "500MB" or "1.5GiB" (2^30 bytes).',
  });
}

/** Bytes in a size string such as "2GB", "500MB", "1.5GiB", "10 KB" or "1048576". */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!match) throw sizeError(text, "is not a number followed by a unit");
  const [, number, unit] = match as unknown as [string, string, string];
  const multiplier = unitBytes(unit);
  if (multiplier === undefined) {
    const bits = /^[kmgtp]?b$/i.test(unit);
    throw sizeError(
      text,
      `has an unknown unit ${JSON.stringify(unit)}`,
      bits
        ? `A lowercase "b" means bytes to huggingface_hub but bits to transformers; write ${JSON.stringify(`${number}${unit.slice(0, -1).toUpperCase()}B`)} for bytes.`
        : undefined,
    );
  }
  const [whole = "", fraction = ""] = number.split(".");
  const scaled =
    (BigInt(`${whole}${fraction}` || "0") * multiplier) / 10n ** BigInt(fraction.length);
  if (scaled < 1n) throw sizeError(text, "is less than one byte");
  if (scaled > BigInt(Number.MAX_SAFE_INTEGER)) throw sizeError(text, "is larger than 2^53 bytes");
  return Number(scaled);
}

/** A size given as bytes or as a size string, checked to be a whole number of bytes from 1 to 2^53. */
export function resolveSize(size: number | string): number {
  if (typeof size === "string") return parseSize(size);
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new ConfigError(
      "INVALID_SIZE",
      `size ${size} is not a whole number of bytes of at least 1`,
      {
        hint: 'Pass a positive integer, or a string such as "5GB".',
      },
    );
  }
  return size;
}
