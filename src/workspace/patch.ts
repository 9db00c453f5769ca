/**
 * Unified diffs for workspace_patch_apply: parsed with jsdiff, every file's
 * path confined to /workspace, and applied with no fuzz. Pure: the caller
 * reads the current files, applies every file's hunks in memory, and writes
 * only if all of them applied, so a conflict anywhere changes nothing.
 */
import { applyPatch, parsePatch, type StructuredPatch } from "diff"
import * as Either from "effect/Either"
import { normalizeWorkspacePath, WORKSPACE_PATH } from "../contract/workspace/paths.js"

export type FileChange = "added" | "modified" | "deleted"

export interface FilePatch {
  /** Absolute, normalised, under /workspace. */
  readonly path: string
  readonly change: FileChange
  readonly patch: StructuredPatch
}

/** Why a patch cannot be applied; `path` names the file when the trouble is one file's. */
export interface PatchProblem {
  readonly path?: string
  readonly reason: string
}

const DEV_NULL = "/dev/null"

/**
 * A name from a `---`/`+++` line as a path under /workspace: git's `a/` and
 * `b/` prefixes dropped, then normalised as every workspace path is
 * (relative names from /workspace; `..`, NUL or anything outside refused).
 */
export const workspacePathOf = (name: string): Either.Either<string, string> => {
  // jsdiff keeps a trailing tab-separated timestamp out of the name, but not git's prefixes.
  const path = normalizeWorkspacePath(name.replace(/^[ab]\//, ""))
  if (Either.isLeft(path)) return Either.left(`${name}: ${path.left}`)
  return path.right === WORKSPACE_PATH ? Either.left(`${name}: not a file under ${WORKSPACE_PATH}`) : path
}

/** Parse a unified diff into one entry per file; anything malformed or outside /workspace is refused. */
export const parseWorkspacePatch = (text: string): Either.Either<ReadonlyArray<FilePatch>, PatchProblem> => {
  let parsed: Array<StructuredPatch>
  try {
    parsed = parsePatch(text)
  } catch (e) {
    return Either.left({ reason: `not a unified diff: ${(e as Error).message}` })
  }
  const files: Array<FilePatch> = []
  const seen = new Set<string>()
  for (const patch of parsed) {
    const oldName = patch.oldFileName ?? ""
    const newName = patch.newFileName ?? ""
    if (oldName === "" && newName === "" && patch.hunks.length === 0) continue // text around the diff
    if (oldName === "" || newName === "") return Either.left({ reason: "a file's --- or +++ line is missing" })
    if (patch.hunks.length === 0) return Either.left({ reason: `${newName}: no hunks (renames and mode changes are not supported)` })
    const change: FileChange = oldName === DEV_NULL ? "added" : newName === DEV_NULL ? "deleted" : "modified"
    const oldPath = change === "added" ? undefined : workspacePathOf(oldName)
    const newPath = change === "deleted" ? undefined : workspacePathOf(newName)
    for (const p of [oldPath, newPath]) if (p && Either.isLeft(p)) return Either.left({ reason: p.left })
    const path = Either.getOrThrow((newPath ?? oldPath)!)
    if (oldPath && newPath && Either.getOrThrow(oldPath) !== path) {
      return Either.left({ path, reason: `renames are not supported (${oldName} -> ${newName})` })
    }
    if (seen.has(path)) return Either.left({ path, reason: "the patch changes this file twice" })
    seen.add(path)
    files.push({ path, change, patch })
  }
  if (files.length === 0) return Either.left({ reason: "the patch changes no file" })
  return Either.right(files)
}

/**
 * Whether a hunk's context and removed lines are the file's lines exactly
 * where the hunk says. jsdiff would also try other places (an offset); a
 * patch for another version of the file is refused instead.
 */
const hunkMatchesInPlace = (hunk: StructuredPatch["hunks"][number], lines: ReadonlyArray<string>): boolean => {
  const expected = hunk.lines.filter((l) => l.startsWith(" ") || l.startsWith("-")).map((l) => l.slice(1))
  // A hunk that removes nothing names the line it inserts after: line 0 is the start.
  const first = hunk.oldLines === 0 ? hunk.oldStart : hunk.oldStart - 1
  if (first < 0 || first + expected.length > lines.length) return false
  return expected.every((line, i) => lines[first + i] === line)
}

/**
 * The file's new content (null: deleted), or why its hunks do not apply to
 * `current` (undefined: the file does not exist) exactly, with no fuzz.
 */
export const applyFilePatch = (file: FilePatch, current: string | undefined): Either.Either<string | null, PatchProblem> => {
  const { path, change } = file
  if (change === "added" && current !== undefined) return Either.left({ path, reason: "the patch adds it, but it exists" })
  if (change !== "added" && current === undefined) return Either.left({ path, reason: "no such file" })
  const lines = (current ?? "").split("\n")
  const misplaced = file.patch.hunks.findIndex((hunk) => !hunkMatchesInPlace(hunk, lines))
  if (misplaced >= 0) {
    const hunk = file.patch.hunks[misplaced]!
    return Either.left({
      path,
      reason: `hunk ${misplaced + 1} (@@ -${hunk.oldStart},${hunk.oldLines}) does not match the file at line ${hunk.oldStart}`
    })
  }
  const result = applyPatch(current ?? "", file.patch, { fuzzFactor: 0 })
  if (result === false) return Either.left({ path, reason: "a hunk does not apply (the file differs from the patch's context)" })
  if (change === "deleted") {
    return result === "" ? Either.right(null) : Either.left({ path, reason: "the patch deletes it, but not all of its content" })
  }
  return Either.right(result)
}
