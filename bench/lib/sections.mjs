import { readdir } from "node:fs/promises";

/**
 * Sections are the modules in bench/sections/*.mjs, each exporting `name`, `title` and
 * `run(context)`. The built-in ones run in this order; any other module found there runs after
 * them, in file-name order, so adding a section is adding a file.
 */
const BUILT_IN_ORDER = ["open", "read", "load", "convert"];

export async function loadSections() {
  const folder = new URL("../sections/", import.meta.url);
  const files = (await readdir(folder)).filter((f) => f.endsWith(".mjs")).sort();
  const sections = [];
  for (const file of files) {
    const module = await import(new URL(file, folder).href);
    if (typeof module.name !== "string" || typeof module.run !== "function") {
      throw new Error(`bench/sections/${file} must export name (a string) and run(context)`);
    }
    sections.push({ name: module.name, title: module.title ?? module.name, run: module.run, file });
  }
  const rank = (s) => {
    const i = BUILT_IN_ORDER.indexOf(s.name);
    return i === -1 ? BUILT_IN_ORDER.length : i;
  };
  return sections.sort((a, b) => rank(a) - rank(b));
}
