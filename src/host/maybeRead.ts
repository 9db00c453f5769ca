/**
 * Blocking reads where "not there" is an answer, not an error: records and
 * directories another pyro process may be writing or removing right now.
 */
import * as Option from "effect/Option"
import * as Fs from "node:fs"

/** A file's text, or none if it cannot be read (gone, not yet there, not ours). */
export const readTextIfAny = (path: string): Option.Option<string> => {
  try {
    return Option.some(Fs.readFileSync(path, "utf8"))
  } catch {
    return Option.none()
  }
}

/** A directory's entry names, or none at all if it cannot be read. */
export const entriesIfAny = (dir: string): Array<string> => {
  try {
    return Fs.readdirSync(dir)
  } catch {
    return []
  }
}
