#!/usr/bin/env node
// Launcher committed in the repo so that pnpm links the bin at install time,
// before `pnpm build` has produced dist/.
import "../dist/cli.js";
