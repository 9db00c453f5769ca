// Runs the benchmarks in bench/: `npm run bench` (all) or `npm run bench -- boot`.
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { readdirSync } from "node:fs"

const all = readdirSync("bench").filter((f) => f.endsWith(".ts") && f !== "support.ts").map((f) => f.slice(0, -3))
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all

execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" })
for (const name of chosen) {
  if (!all.includes(name)) throw new Error(`no benchmark bench/${name}.ts (have: ${all.join(", ")})`)
  const outfile = `dist/bench/${name}.js`
  await build({
    entryPoints: [`bench/${name}.ts`],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    banner: { js: "import { createRequire as __pyroRequire } from 'node:module'; const require = __pyroRequire(import.meta.url);" },
    define: { "import.meta.dirname": JSON.stringify(`${process.cwd()}/bench`) },
    logLevel: "warning"
  })
  execFileSync(process.execPath, [outfile], { stdio: "inherit" })
}
