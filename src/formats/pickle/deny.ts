import { UnsafeCheckpointError } from "../../errors.js";

/**
 * Globals no checkpoint has a reason to mention: a pickle that names one is an attack, even if
 * the name is never called. This list is defence in depth only: safety comes from the
 * unpickler never calling anything but TypeScript handlers.
 */

/** Top-level modules denied with all their submodules (`os` covers `os.path`). */
const DENIED_MODULES: ReadonlySet<string> = new Set([
  "os",
  "posix",
  "nt",
  "posixpath",
  "ntpath",
  "subprocess",
  "_posixsubprocess",
  "sys",
  "socket",
  "_socket",
  "shutil",
  "importlib",
  "runpy",
  "pickle",
  "_pickle",
  "marshal",
  "types",
  "code",
  "codeop",
  "ctypes",
  "_ctypes",
  "webbrowser",
  "pty",
  "platform",
  "asyncio",
  "multiprocessing",
  "threading",
  "_thread",
  "signal",
  "pdb",
  "bdb",
  "timeit",
  "profile",
  "cProfile",
  "trace",
  "urllib",
  "http",
  "ftplib",
  "smtplib",
  "telnetlib",
  "imaplib",
  "nntplib",
  "poplib",
  "tempfile",
  "glob",
  "io",
  "_io",
  "logging",
  "operator",
  "_operator",
  "functools",
  "_functools",
  "inspect",
  "linecache",
  "zipimport",
  "pkgutil",
  "site",
  "sysconfig",
  "distutils",
  "setuptools",
  "pip",
  "ensurepip",
  "venv",
  "pydoc",
  "_osx_support",
  "_aix_support",
  "_pyrepl",
  "idlelib",
  "dill",
  "cloudpickle",
]);

/** Builtins a pickle may name: data types, and `object` as copyreg._reconstructor's base. */
const ALLOWED_BUILTINS: ReadonlySet<string> = new Set([
  "object",
  "set",
  "frozenset",
  "bytearray",
  "bytes",
  "complex",
  "int",
  "float",
  "str",
  "bool",
  "list",
  "dict",
  "tuple",
  "slice",
  "range",
  "Ellipsis",
  "NotImplemented",
]);

const BUILTIN_MODULES: ReadonlySet<string> = new Set(["builtins", "__builtin__", "__builtins__"]);

/** Dunder names that are plain pickle machinery: object.__new__ by another name. */
const ALLOWED_DUNDERS: ReadonlySet<string> = new Set([
  "copyreg.__newobj__",
  "copyreg.__newobj_ex__",
  "copy_reg.__newobj__",
]);

/** Why `module.name` is denied, or undefined when it is not. */
export function denialReason(module: string, name: string): string | undefined {
  const topLevel = module.split(".", 1)[0]!;
  if (DENIED_MODULES.has(topLevel)) return `module '${topLevel}' is never allowed`;
  // Protocol 4 resolves a dotted name attribute by attribute: check every step of the path.
  if (ALLOWED_DUNDERS.has(`${module}.${name}`)) return undefined;
  const path = name.split(".");
  if (BUILTIN_MODULES.has(module) && !ALLOWED_BUILTINS.has(path[0]!)) {
    return `builtin '${path[0]}' is never allowed`;
  }
  for (const step of path) {
    if (step.startsWith("__") && step.endsWith("__")) {
      return `attribute '${step}' reaches into Python internals`;
    }
    if (DENIED_MODULES.has(step) || BUILTIN_MODULES.has(step)) {
      return `attribute '${step}' reaches a denied module`;
    }
  }
  return undefined;
}

/** Throws UnsafeCheckpointError `UNSAFE_GLOBAL` if the pickle names a denied global. */
export function refuseDeniedGlobal(
  module: string,
  name: string,
  location: { file: string | undefined; offset: number },
): void {
  const reason = denialReason(module, name);
  if (reason === undefined) return;
  const global = `${module}.${name}`;
  throw new UnsafeCheckpointError("UNSAFE_GLOBAL", `pickle references ${global} (${reason})`, {
    ...location,
    global,
    hint: "This file tries to run code when loaded: do not open it with torch.load or pickle either.",
  });
}
