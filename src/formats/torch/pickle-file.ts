import { FormatError } from "../../errors.js";
import type { ByteSource } from "../../io/byte-source.js";
import { unpickle } from "../pickle/unpickler.js";
import type { FormatOptions, OpenedFormat } from "../types.js";
import { MAX_PICKLE_BYTES, pickleTooLarge } from "./limits.js";
import { resolveTorchGlobal } from "./rebuild.js";

/** A bare pickle is read whole into memory: beyond this, it is not a checkpoint worth the risk. */
export const MAX_PICKLE_FILE_BYTES = MAX_PICKLE_BYTES;

/**
 * A bare pickle (not written by torch.save): the whole file unpickled with the same allowlist as
 * torch files. It cannot hold storages (there is nowhere for their bytes to be), so a persistent
 * id is refused; tensors can only come from numpy arrays.
 */
export async function openPickle(
  source: ByteSource,
  options: FormatOptions = {},
): Promise<OpenedFormat> {
  const file = source.name;
  if (source.size > MAX_PICKLE_FILE_BYTES) throw pickleTooLarge(file, source.size, "bare pickle");
  const bytes = await source.read(0, source.size);
  const unpickleOptions = {
    file,
    resolveGlobal: resolveTorchGlobal,
    persistentLoad: {
      load(): never {
        throw new FormatError(
          "PERSISTENT_ID",
          "pickle refers to external storages: not a torch.save file",
          { file, hint: "Only torch.save files (zip or legacy) can hold storages." },
        );
      },
    },
    strict: options.strict,
    allowGlobals: options.allowGlobals,
    limits: options.limits,
  };
  const result = unpickle(bytes, unpickleOptions);
  // pickle.load returns the first pickle, but a second one behind it is a known way to smuggle
  // a payload past scanners: every pickle in the file goes through the same allowlist.
  const opaqueClasses = new Set(result.opaqueClasses);
  let end = result.end;
  let more = 0;
  while (end < bytes.length) {
    const next = unpickle(bytes, unpickleOptions, end);
    for (const name of next.opaqueClasses) opaqueClasses.add(name);
    end = next.end;
    more++;
  }
  const details: Record<string, string | number | boolean> = {};
  if (bytes[0] === 0x80 && bytes[1] !== undefined) details.protocol = bytes[1];
  if (more > 0) details.morePickles = more;
  return {
    format: "pickle",
    root: result.value,
    opaqueClasses,
    details,
    ownedSources: [],
  };
}
