/**
 * A project's seed: exactly its Git-tracked files (`git ls-files`), as they
 * are in the working tree now (a checkout's uncommitted edits included; a
 * clone's are the commit's). A tracked file deleted from the working tree is
 * left out; untracked and ignored files are never listed; a submodule is
 * skipped with a warning (its files belong to another repository). The tree
 * is walked as any seed directory is, restricted to those paths, and every
 * entry goes through the same archive policy: a tracked symlink that leads
 * out of the checkout is refused like one in a seed_path directory.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import type { WorkspaceSeed } from "../../contract/workspace/lifecycle.js"
import type { WalkSelection } from "../../archive/directory.js"
import type { ProjectSourceShape } from "../../services/ProjectSource.js"
import { ImportSourceError } from "../import/errors.js"
import { type ImportSource, selectedDirectoryImport } from "../import/source.js"
import { projectOriginRef } from "./describe.js"
import { runGit } from "./git.js"

/** The index's file mode of a submodule (a "gitlink"). */
const GITLINK_MODE = "160000"

export interface TrackedPaths {
  /** Paths of tracked files and symlinks, relative to the top level, "/"-separated. */
  readonly files: ReadonlySet<string>
  readonly submodules: ReadonlyArray<string>
}

/** `git ls-files -z --stage` output: `<mode> <object> <stage>\t<path>\0` per entry (a conflicted path up to three times). */
export const parseTrackedListing = (listing: string): TrackedPaths => {
  const files = new Set<string>()
  const submodules = new Set<string>()
  for (const record of listing.split("\0")) {
    const tab = record.indexOf("\t")
    if (tab < 0) continue
    const path = record.slice(tab + 1)
    if (record.slice(0, tab).split(" ")[0] === GITLINK_MODE) submodules.add(path)
    else files.add(path)
  }
  return { files, submodules: [...submodules] }
}

/** Directories are taken when a tracked path lies beneath them (and so entered), anything else when it is tracked. */
export const trackedSelection = (tracked: TrackedPaths): WalkSelection => {
  const ancestors = new Set<string>()
  for (const file of tracked.files) {
    for (let slash = file.indexOf("/"); slash >= 0; slash = file.indexOf("/", slash + 1)) {
      ancestors.add(file.slice(0, slash))
    }
  }
  return (rel, stat) => (stat.isDirectory() ? ancestors.has(rel) : tracked.files.has(rel))
}

export interface SeedSource {
  readonly source: ImportSource
  readonly origin: Pick<WorkspaceSeed, "origin_kind" | "origin_ref">
}

/** The seed a create without seed_path takes from the server's project, listed now. */
export const projectSeed = (
  project: Exclude<ProjectSourceShape, { kind: "none" }>
): Effect.Effect<SeedSource, ImportSourceError, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const label = projectOriginRef(project)
    const root = yield* Effect.try({
      // Real, as a walk's root must be: its files are checked to be opened where the walk found them.
      try: () => Fs.realpathSync(project.kind === "project_path" ? project.root : project.checkout),
      catch: (e) => new ImportSourceError({ source: label, detail: `cannot resolve its directory: ${String(e)}` })
    })
    const { stdout } = yield* runGit(["ls-files", "-z", "--stage"], { cwd: root, wholeOutput: true }).pipe(
      Effect.mapError((e) => new ImportSourceError({ source: label, detail: `cannot list its Git-tracked files: ${e.message}` }))
    )
    const tracked = parseTrackedListing(stdout)
    for (const submodule of tracked.submodules) {
      yield* Effect.logWarning(`project seed: submodule ${submodule} skipped (its files are another repository's)`)
    }
    return {
      source: selectedDirectoryImport(label, root, trackedSelection(tracked)),
      origin: { origin_kind: project.kind, origin_ref: label }
    }
  })
