/**
 * Reading a configuration file from disk (Node only: the one module of src/config that imports
 * `node:` modules). Everything after reading is parseConfigText's.
 */
import { open } from "node:fs/promises";
import { ConfigError } from "../errors.js";
import { type ParseConfigOptions, type ParsedConfig, parseConfigText } from "./load.js";

/** A configuration is a page of YAML; anything this large is not one. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export interface LoadConfigFileOptions extends Omit<ParseConfigOptions, "file"> {
  /** Refuse files larger than this (default 1 MiB). */
  maxBytes?: number;
}

async function readUtf8(path: string, maxBytes: number): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new ConfigError(
      "CONFIG_READ",
      `cannot open the configuration file (${code ?? "error"})`,
      {
        file: path,
        cause: error,
        hint: code === "ENOENT" ? "Check the path." : undefined,
      },
    );
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) {
      throw new ConfigError(
        "CONFIG_TOO_LARGE",
        `configuration file is ${size} bytes, more than the ${maxBytes} allowed`,
        { file: path, hint: "Is this really a YAML configuration?" },
      );
    }
    // Read at most maxBytes + 1 so that a file that grew after stat is still caught.
    const buffer = new Uint8Array(Math.min(size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) {
      throw new ConfigError(
        "CONFIG_TOO_LARGE",
        `configuration file is larger than ${maxBytes} bytes`,
        {
          file: path,
        },
      );
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
    } catch (error) {
      throw new ConfigError("CONFIG_ENCODING", "configuration file is not valid UTF-8", {
        file: path,
        cause: error,
        hint: "Save it as UTF-8.",
      });
    }
  } finally {
    await handle.close();
  }
}

/** Reads, parses and resolves a YAML configuration file (see parseConfigText). */
export async function loadConfigFile(
  path: string,
  options: LoadConfigFileOptions = {},
): Promise<ParsedConfig> {
  const { maxBytes = MAX_CONFIG_BYTES, ...rest } = options;
  const text = await readUtf8(path, maxBytes);
  return parseConfigText(text, { ...rest, file: path });
}
