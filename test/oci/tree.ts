import * as Fs from "node:fs"
import * as Path from "node:path"

/** `path kind [mode] [content or target]` for everything under `root`, sorted. */
export const describeTree = (root: string): Array<string> => {
  const out: Array<string> = []
  const walk = (rel: string) => {
    for (const name of Fs.readdirSync(Path.join(root, rel)).sort()) {
      const child = rel ? `${rel}/${name}` : name
      const full = Path.join(root, child)
      const stat = Fs.lstatSync(full)
      const mode = (stat.mode & 0o7777).toString(8)
      if (stat.isSymbolicLink()) out.push(`${child} -> ${Fs.readlinkSync(full)}`)
      else if (stat.isDirectory()) {
        out.push(`${child}/ ${mode}`)
        walk(child)
      } else out.push(`${child} ${mode} ${JSON.stringify(Fs.readFileSync(full, "utf8"))}`)
    }
  }
  walk("")
  return out
}
