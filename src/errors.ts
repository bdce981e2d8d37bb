/**
 * One typed hierarchy for everything loadout refuses. Every error says what went wrong, where
 * (file, key, byte offset) and, when there is one, what to do about it.
 */

export interface ErrorLocation {
  /** File (or record inside an archive) the problem was found in. */
  file?: string | undefined;
  /** State-dict key or tree path the problem concerns. */
  key?: string | undefined;
  /** Byte offset in `file`. */
  offset?: number | undefined;
}

export interface ErrorDetails extends ErrorLocation {
  /** What the user can do about it. */
  hint?: string | undefined;
  cause?: unknown;
}

function describeLocation({ file, key, offset }: ErrorLocation): string {
  const parts: string[] = [];
  if (file !== undefined) parts.push(file);
  if (key !== undefined) parts.push(`key '${key}'`);
  if (offset !== undefined) parts.push(`offset ${offset}`);
  return parts.length > 0 ? ` [${parts.join(", ")}]` : "";
}

/** Base class of every error loadout throws on purpose. */
export class LoadoutError extends Error {
  /** Stable machine-readable code, e.g. `UNSAFE_GLOBAL` or `HeaderTooLarge`. */
  readonly code: string;
  readonly file: string | undefined;
  readonly key: string | undefined;
  readonly offset: number | undefined;
  readonly hint: string | undefined;
  /** The message without location and hint. */
  readonly what: string;

  constructor(code: string, what: string, details: ErrorDetails = {}) {
    // A multi-line `what` is a headline, then one line per problem: the location ends the
    // headline, and the hint gets a line of its own after the list.
    const newline = what.indexOf("\n");
    const headline = newline < 0 ? what : what.slice(0, newline);
    const list = newline < 0 ? "" : what.slice(newline);
    const hint = details.hint ? `${list ? "\n" : " "}${details.hint}` : "";
    super(`${headline}${describeLocation(details)}.${list}${hint}`, { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.what = what;
    this.file = details.file;
    this.key = details.key;
    this.offset = details.offset;
    this.hint = details.hint;
  }
}

/** The bytes are not a valid checkpoint of the format they claim to be (corrupt or truncated). */
export class FormatError extends LoadoutError {}

/** The file is of a kind loadout does not read (numpy .npy, 7z, pre-2017 torch tar, ...). */
export class UnsupportedFormatError extends LoadoutError {}

/** A safetensors header breaks one of the reference validator's rules; `code` names the rule. */
export class SafetensorsError extends FormatError {}

/** A zip archive is malformed, encrypted, compressed where it must not be, or hostile. */
export class ArchiveError extends FormatError {}

/** A pickle stream is malformed (bad opcode, stack underflow, frame abuse, unhashable key...). */
export class PickleError extends FormatError {}

/** A read past the end of a byte source or of a tensor's storage. */
export class OutOfBoundsError extends FormatError {}

/** The pickle asks for something loadout never does: calling or building a global that is not on the allowlist. */
export class UnsafeCheckpointError extends LoadoutError {
  /** `module.name` of the offending global. */
  readonly global: string | undefined;
  constructor(code: string, what: string, details: ErrorDetails & { global?: string } = {}) {
    super(code, what, details);
    this.global = details.global;
  }
}

/** A resource limit (memo size, stack depth, container size, ...) was hit; `code` names the limit. */
export class LimitExceededError extends LoadoutError {}

/** A tensor cannot be read as asked (wrong destination type, unsupported conversion, bad view). */
export class TensorError extends LoadoutError {}

/** A configuration file or override is invalid. */
export class ConfigError extends LoadoutError {}

/** A checkpoint does not fit its targets under the chosen strategy (strict violation, shape mismatch...). */
export class LoadError extends LoadoutError {}

/** Two keys could match the same target, or one key two targets: loadout never guesses. */
export class AmbiguousKeyError extends LoadError {}

/**
 * Something cannot be written as given (a duplicate or unencodable tensor name, metadata that is
 * not strings, an unsupported dtype), or the output failed (disk full, permission denied).
 */
export class WriteError extends LoadoutError {}

/** Checkpoints being merged disagree on a tensor's shape or dtype. */
export class MergeConflictError extends LoadoutError {}

export function isLoadoutError(error: unknown): error is LoadoutError {
  return error instanceof LoadoutError;
}
