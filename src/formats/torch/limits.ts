import { LimitExceededError } from "../../errors.js";

/**
 * Sizes loadout reads whole into memory from a torch file, refused beyond these: a pickle
 * (data.pkl, a legacy file's pickles, a bare pickle file) and the small text records of a zip.
 */

/** Pickles are read whole; real ones are kilobytes to a few megabytes. */
export const MAX_PICKLE_BYTES = 1 << 30;

/** `byteorder`, `version`, `.format_version`, `.storage_alignment`: a few bytes each. */
export const MAX_TEXT_RECORD_BYTES = 4096;

export function pickleTooLarge(file: string, bytes: number, what: string): LimitExceededError {
  return new LimitExceededError(
    "PICKLE_TOO_LARGE",
    `${what} of ${bytes} bytes is over the ${MAX_PICKLE_BYTES}-byte limit`,
    { file, hint: "Save large checkpoints with torch.save (zip) or as safetensors." },
  );
}
