/**
 * Where a tool caller may import from (seed_path, source_path): only inside
 * the operator's import roots, never inside pyro's state or cache, and never
 * through a link that leaves a root. The CLI, run by the operator, may import
 * any path. docs/security.md has the rules and their tests.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { InvalidInput } from "../../contract/errors.js"
import { Caller } from "../../services/Caller.js"

export interface ImportBounds {
  /** Absolute directories a tool caller may import from (empty: none). */
  readonly roots: ReadonlyArray<string>
  /** Never importable, even inside a root: pyro's own state and cache. */
  readonly forbidden: ReadonlyArray<string>
}

const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith(Path.sep) ? dir : dir + Path.sep)

/**
 * The default root: the directory the server or SDK was started in, unless
 * that is `/`, the home directory or a directory above it (an MCP client may
 * start servers there), which would hand a caller every file the user has.
 */
export const defaultImportRoots = (cwd = process.cwd(), home = Os.homedir()): Array<string> => {
  const dir = Path.resolve(cwd)
  return dir === Path.parse(dir).root || within(Path.resolve(home), dir) ? [] : [dir]
}

/** `PYRO_IMPORT_ROOTS`: colon-separated directories, resolved against the start directory; empty: none. */
export const parseImportRoots = (value: string, cwd = process.cwd()): Array<string> =>
  value.split(":").filter((p) => p.trim() !== "").map((p) => Path.resolve(cwd, p))


/** A directory's real path, or its resolved path if it does not exist (then nothing is inside it anyway). */
const real = (dir: string) => {
  try {
    return Fs.realpathSync(dir)
  } catch {
    return Path.resolve(dir)
  }
}

/** Why `root` cannot serve as an import root, if it cannot (checked when a server starts, to warn the operator). */
export const rootProblem = (root: string): string | undefined => {
  try {
    return Fs.statSync(root).isDirectory() ? undefined : "is not a directory"
  } catch {
    return "does not exist"
  }
}

/**
 * The path to import from, for the caller in progress: as given for the
 * operator; for a tool caller, its real path once proved inside a root and
 * outside pyro's own directories. Checked by name first and by real path
 * second, so a refusal never says whether a file outside the roots exists.
 */
export const importPathFor = (field: "seed_path" | "source_path", path: string, bounds: ImportBounds) =>
  Effect.gen(function*() {
    const caller = yield* Caller
    if (caller.kind === "operator") return path
    const refuse = (why: string) =>
      new InvalidInput({
        detail: `${field}: ${JSON.stringify(path)} ${why}; ${
          bounds.roots.length > 0
            ? `a caller may import only from ${bounds.roots.join(", ")}`
            : "no import roots are set"
        } (the operator sets them with PYRO_IMPORT_ROOTS)`
      })
    // Each directory as given and as its real path: a caller may name a path either way.
    const both = (dirs: ReadonlyArray<string>) => [...new Set(dirs.flatMap((d) => [Path.resolve(d), real(d)]))]
    const roots = both(bounds.roots)
    const forbidden = both(bounds.forbidden)
    const problem = (p: string) =>
      !roots.some((r) => within(p, r))
        ? "outside"
        : forbidden.some((f) => within(p, f) || within(f, p))
        ? "pyro's own"
        : undefined
    const PYRO_OWN = "is or holds pyro's own state or cache directory"
    const named = Path.resolve(path)
    const byName = problem(named)
    if (byName) return yield* refuse(byName === "outside" ? "is outside the directories this server may import from" : PYRO_OWN)
    let resolved: string
    try {
      resolved = Fs.realpathSync(named)
    } catch {
      return named // missing or unreadable: the import reports it, and it is inside a root by name
    }
    const byTarget = problem(resolved)
    if (byTarget) {
      return yield* refuse(byTarget === "outside" ? `leads outside the import roots through a link (to ${resolved})` : PYRO_OWN)
    }
    return resolved
  })
