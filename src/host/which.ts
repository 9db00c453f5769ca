import * as Fs from "node:fs"
import * as Path from "node:path"

/** The full path of `command` on $PATH, or undefined. */
export const which = (command: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue
    const full = Path.join(dir, command)
    try {
      Fs.accessSync(full, Fs.constants.X_OK)
      return full
    } catch {
      // not here
    }
  }
  return undefined
}
