// Bundles the entrypoints with esbuild: one file per entrypoint loads much faster than
// hundreds of ES modules, which matters for a CLI whose every run starts Node.
import { build } from "esbuild"

const entryPoints = { cli: "src/entrypoints/cli.ts" }

await build({
  entryPoints,
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
})
