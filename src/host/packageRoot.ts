/** The installed package's root, where guest/ sources live, from wherever this module was bundled. */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

let cached: string | undefined

export const packageRoot = (): string => {
  if (cached) return cached
  let dir = Path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (Fs.existsSync(Path.join(dir, "package.json")) && Fs.existsSync(Path.join(dir, "guest"))) return (cached = dir)
    const parent = Path.dirname(dir)
    if (parent === dir) throw new Error("pyro: cannot find the package root (package.json beside guest/)")
    dir = parent
  }
}
