// Generated from package.json by scripts/version-file.mjs (run by `build`); do not edit.
export const VERSION = '0.1.0';
