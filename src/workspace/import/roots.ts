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
import { PyroConfig } from "../../services/PyroConfig.js"

export interface ImportBounds {
  /** Absolute directories a tool caller may import from (empty: none). */
  readonly roots: ReadonlyArray<string>
  /** Never importable, even inside a root: pyro's own state and cache. */
  readonly forbidden: ReadonlyArray<string>
}

const within = (path: string, dir: string) => path === dir || strictlyWithin(path, dir)
const strictlyWithin = (path: string, dir: string) => path.startsWith(dir.endsWith(Path.sep) ? dir : dir + Path.sep)

/**
 * The default root: the directory the server or SDK was started in, unless
 * that is `/`, the home directory or a directory above it (an MCP client may
 * start servers there), which would hand a caller every file the user has.
 */
export const defaultImportRoots = (cwd = process.cwd(), home = Os.homedir()): Array<string> => {
  const dir = Path.resolve(cwd)
  return holdsHome(dir, home) ? [] : [dir]
}

/** `/`, the home directory or a directory above it: too wide to hand a tool caller (here, and for a detected project). */
export const holdsHome = (dir: string, home = Os.homedir()): boolean => {
  const resolved = Path.resolve(dir)
  return resolved === Path.parse(resolved).root || within(Path.resolve(home), resolved)
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

/** The checks a tool caller's host path goes through, and how a refusal reads. */
const rootsCheck = (field: string, path: string, bounds: ImportBounds, verb: string, strict = false) => {
  const refuse = (why: string) =>
    new InvalidInput({
      detail: `${field}: ${JSON.stringify(path)} ${why}; ${
        bounds.roots.length > 0
          ? `a caller may ${verb} ${bounds.roots.join(", ")}`
          : "no import roots are set"
      } (the operator sets them with PYRO_IMPORT_ROOTS)`
    })
  // Each directory as given and as its real path: a caller may name a path either way.
  const both = (dirs: ReadonlyArray<string>) => [...new Set(dirs.flatMap((d) => [Path.resolve(d), real(d)]))]
  const roots = both(bounds.roots)
  const forbidden = both(bounds.forbidden)
  const problem = (p: string) =>
    !roots.some((r) => (strict ? strictlyWithin(p, r) : within(p, r)))
      ? "outside"
      : forbidden.some((f) => within(p, f) || within(f, p))
      ? "pyro's own"
      : undefined
  return { PYRO_OWN: "is or holds pyro's own state or cache directory", problem, refuse }
}

/** The bounds pyro's configuration sets: its import roots, and its own state and cache directories. */
export const boundsOf = (
  config: { readonly importRoots: ReadonlyArray<string>; readonly stateDir: string; readonly cacheDir: string }
): ImportBounds => ({
  roots: config.importRoots,
  forbidden: [config.stateDir, config.cacheDir]
})

/** `exportPathFor` within the bounds the configuration sets. */
export const configuredExportPath = (path: string) =>
  Effect.flatMap(PyroConfig, (config) => exportPathFor(path, boundsOf(config)))

/**
 * Where an export may write, for the caller in progress: anywhere for the
 * operator; for a tool caller, inside the same roots imports come from (by
 * name, and by the real path of its directory, so a link cannot lead out),
 * never pyro's own directories. The output itself need not exist.
 */
export const exportPathFor = (path: string, bounds: ImportBounds) =>
  Effect.gen(function*() {
    const named = Path.resolve(path)
    const caller = yield* Caller
    if (caller.kind === "operator") return named
    // Strictly inside a root: a root itself is never replaced, and the staging directory beside the output stays inside too.
    const { PYRO_OWN, problem, refuse } = rootsCheck("output_path", path, bounds, "write only below", true)
    const byName = problem(named)
    if (byName) return yield* refuse(byName === "outside" ? "is not below the directories this server may write into" : PYRO_OWN)
    let parent: string
    try {
      parent = Fs.realpathSync(Path.dirname(named))
    } catch {
      return named // no such directory: the export reports it, and it is inside a root by name
    }
    const resolved = Path.join(parent, Path.basename(named))
    const byTarget = problem(resolved)
    if (byTarget) {
      return yield* refuse(byTarget === "outside" ? `leads outside the roots through a link (to ${resolved})` : PYRO_OWN)
    }
    return resolved
  })

/**
 * The path to import from, for the caller in progress: as given for the
 * operator; for a tool caller, its real path once proved inside a root and
 * outside pyro's own directories. Checked by name first and by real path
 * second, so a refusal never says whether a file outside the roots exists.
 */
export const importPathFor = (field: "seed_path" | "source_path" | "file_path", path: string, bounds: ImportBounds) =>
  Effect.gen(function*() {
    const caller = yield* Caller
    if (caller.kind === "operator") return path
    const { PYRO_OWN, problem, refuse } = rootsCheck(field, path, bounds, "import only from")
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
