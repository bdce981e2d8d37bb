/**
 * The version loadout records as the writer of its files (`loadout 0.1.0`). Kept equal to
 * package.json's version by a test; src/ cannot read package.json (it runs in browsers too).
 */
export const LOADOUT_VERSION = "0.1.0";
