// Bundles the entrypoints with esbuild: one file per entrypoint loads much faster than
// hundreds of ES modules, which matters for a CLI whose every run starts Node.
//
// The CLI is one CommonJS file, so that bin/pyro.js can compile it with V8's code cache
// (Node 20 has no compile cache for ES modules): a warm `pyro run` starts ~80 ms sooner.
// What only some commands need (the MCP server) stays behind esbuild's lazy module
// initialisers, so it is evaluated only by them.
//
// The CLI bundles its dependencies too; the SDK leaves them to the user's
// node_modules, so an Effect program shares one copy of effect with pyro.
// Type declarations for the SDK come from tsc (tsconfig.build.json).
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"

const common = {
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  outExtension: { ".js": ".js" },
  minify: true,
  sourcemap: "linked",
  legalComments: "none",
  // Some dependencies are CommonJS and call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __pyroRequire } from 'node:module'; const require = __pyroRequire(import.meta.url);" },
  logLevel: "warning"
}

/** One CommonJS file that still knows its own URL (packageRoot() finds guest/ from it). */
const commonJs = {
  format: "cjs",
  outExtension: { ".js": ".cjs" },
  define: { "import.meta.url": "__pyroImportMetaUrl" },
  banner: { js: "const __pyroImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" }
}

/** A small CommonJS file of its own, without the ESM banner or a source map (allowProxy, headStart). */
const standaloneCjs = { format: "cjs", outExtension: { ".js": ".cjs" }, banner: {}, sourcemap: false }

rmSync("dist/chunks", { recursive: true, force: true }) // from builds before the CLI was one file
await Promise.all([
  build({
    ...common,
    entryPoints: { cli: "src/entrypoints/cli.ts" },
    ...commonJs
  }),
  build({ ...common, entryPoints: { sdk: "src/entrypoints/sdk.ts" }, packages: "external", minify: false }),
  // The guest's allowlist proxy: a Node process per guest connection, so one small CommonJS file.
  build({
    ...common,
    entryPoints: { allowProxy: "src/entrypoints/allowProxy.ts" },
    ...standaloneCjs
  }),
  // Spares' background filler: a detached process with pyro's whole runtime, one shape, then exit.
  build({
    ...common,
    entryPoints: { spareFiller: "src/entrypoints/spareFiller.ts" },
    ...commonJs
  }),
  // The lean `pyro run` on a spare (bin/pyro.js loads it before the CLI): small, so a served run starts fast.
  build({
    ...common,
    entryPoints: { runSpare: "src/entrypoints/runSpare.ts" },
    ...commonJs
  }),
  // A simple `pyro run`'s head start (bin/pyro.js loads it before the CLI): QEMU started from a plan. Tiny, no Effect.
  build({
    ...common,
    entryPoints: { headStart: "src/entrypoints/headStart.ts" },
    ...standaloneCjs
  }),
  // A service's published ports: a detached process with pyro's whole runtime (channel leases, the agent).
  build({
    ...common,
    entryPoints: { portForwarder: "src/entrypoints/portForwarder.ts" },
    ...commonJs
  })
])
if (!process.argv.includes("--no-types")) {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" })
}
