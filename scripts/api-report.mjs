#!/usr/bin/env node
// The public API of every package, as committed reports (api/<pkg>.api.md,
// api/<pkg>-<subpath>.api.md), made by API Extractor from the built
// declarations of each entry point that the package's `exports` lists. A
// change to a public name or signature changes a report, so it shows in
// review.
//
//   node scripts/api-report.mjs           # check: fails when a report is stale or missing (CI: scripts/test.sh)
//   node scripts/api-report.mjs --update  # rewrites the reports after an intended API change
//
// Needs `pnpm build` first (it reads dist/*.d.ts). Fails as well when a
// public signature uses a type that its entry point does not export
// (ae-forgotten-export): every type a consumer meets can be named.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const update = process.argv.includes('--update');
const reportFolder = join(root, 'api');
const tempFolder = mkdtempSync(join(tmpdir(), 'webmoe-api-'));
if (update) mkdirSync(reportFolder, { recursive: true });

/** Every (package, entry point) with its declaration file: from the `exports` of packages/* and apps/* package.json. */
function entryPoints() {
  const out = [];
  for (const top of ['packages', 'apps']) {
    for (const dir of readdirSync(join(root, top))) {
      const pkgDir = join(root, top, dir);
      const pkgJson = join(pkgDir, 'package.json');
      if (!existsSync(pkgJson)) continue;
      const pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
      for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
        const types = typeof target === 'object' && target !== null ? target.types : undefined;
        if (typeof types !== 'string') throw new Error(`${relative(root, pkgJson)}: exports["${subpath}"] has no "types"`);
        const name = subpath === '.' ? dir : `${dir}-${subpath.replace(/^\.\//, '').replace(/\//g, '-')}`;
        const main = typeof pkg.exports['.'] === 'object' ? join(pkgDir, pkg.exports['.'].types) : undefined;
        out.push({ name, pkgDir, pkgJson, dts: join(pkgDir, types), main: subpath === '.' ? undefined : main, what: `${pkg.name}${subpath === '.' ? '' : subpath.slice(1)}` });
      }
    }
  }
  return out;
}

/** The names that a declaration file exports. */
function exportedNames(dts) {
  const program = ts.createProgram([dts], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [], skipLibCheck: true, noEmit: true });
  const file = program.getSourceFile(dts);
  const checker = program.getTypeChecker();
  return new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(file)).map((s) => s.name));
}

const problems = [];
for (const e of entryPoints()) {
  // A subpath entry ('./testing', './node') may use the types that the package's main entry exports.
  const fromMain = e.main && existsSync(e.main) ? exportedNames(e.main) : new Set();
  if (!existsSync(e.dts)) {
    problems.push(`${e.what}: ${relative(root, e.dts)} is missing (run \`pnpm build\` first)`);
    continue;
  }
  const config = ExtractorConfig.prepare({
    packageJsonFullPath: e.pkgJson,
    configObjectFullPath: undefined,
    configObject: {
      projectFolder: e.pkgDir,
      mainEntryPointFilePath: e.dts,
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2022', 'DOM'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            types: ['@webgpu/types', 'node'],
            strict: true,
            skipLibCheck: true,
          },
          files: [e.dts],
        },
      },
      apiReport: { enabled: true, reportFolder, reportTempFolder: tempFolder, reportFileName: e.name, includeForgottenExports: false },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      newlineKind: 'lf',
      messages: {
        compilerMessageReporting: { default: { logLevel: 'warning' } },
        extractorMessageReporting: {
          default: { logLevel: 'warning', addToApiReportFile: true },
          // Release tags (@public/@beta) are not used: everything an entry exports is public.
          'ae-missing-release-tag': { logLevel: 'none', addToApiReportFile: false },
          // A public signature that uses a type no entry point exports: export the type or keep it out of the signature.
          'ae-forgotten-export': { logLevel: 'error', addToApiReportFile: false },
          'ae-unresolved-link': { logLevel: 'none', addToApiReportFile: false },
          // Listed with source line numbers, which would make every edit of a source file a report change.
          'ae-undocumented': { logLevel: 'none', addToApiReportFile: false },
        },
        // The doc comments are not TSDoc-checked (they use {@link} loosely and @example freely).
        tsdocMessageReporting: { default: { logLevel: 'none', addToApiReportFile: false } },
      },
    },
  });
  const result = Extractor.invoke(config, {
    localBuild: update,
    showVerboseMessages: false,
    messageCallback: (m) => {
      // "You have changed the API signature ..." is reported below, once per entry point, with the fix.
      if (m.messageId.startsWith('console-api-report-')) {
        m.handled = true;
        return;
      }
      const forgotten = m.messageId === 'ae-forgotten-export' ? /The symbol "([^"]+)"/.exec(m.text)?.[1] : undefined;
      if (forgotten !== undefined && fromMain.has(forgotten)) {
        m.logLevel = ExtractorLogLevel.None;
        m.handled = true;
      }
      if (m.logLevel === ExtractorLogLevel.Info || m.logLevel === ExtractorLogLevel.Verbose) m.handled = true;
    },
  });
  const report = join('api', `${e.name}.api.md`);
  if (update ? !result.succeeded : !result.succeeded && !result.apiReportChanged) problems.push(`${e.what}: API Extractor failed (${result.errorCount} errors)`);
  else if (result.apiReportChanged && !update) problems.push(`${e.what}: ${report} is stale or missing: the public API changed (compare with ${join(tempFolder, `${e.name}.api.md`)})`);
  else console.log(`api-report: ${e.what} -> ${report}${update && result.apiReportChanged ? ' (updated)' : ''}`);
}
if (problems.length) {
  console.error(`api-report: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  console.error('After an intended API change: `node scripts/api-report.mjs --update` and commit api/*.api.md (and a changeset).');
  process.exit(1);
}
rmSync(tempFolder, { recursive: true, force: true });
