/** workspace_export and workspace_diff (the original's 2.6.0 names and result fields). */
import * as Schema from "effect/Schema"
import { withDefault } from "../vm.js"
import { WorkspaceId } from "./paths.js"
import { HostPath, WorkspacePath, WorkspaceResultFields } from "./paths.js"

const HostOutputPath = HostPath.annotations({
  description: "Where on the host to write: a path that does not exist yet (unless overwrite), whose parent does."
})

export const WorkspaceExportInput = Schema.Struct({
  workspace_id: WorkspaceId,
  path: WorkspacePath,
  output_path: HostOutputPath,
  format: withDefault(
    Schema.Literal("tree", "tar").annotations({
      description: "tree: the file or directory itself at output_path; tar: one POSIX tar archive of it there."
    }),
    "tree" as const
  ),
  overwrite: withDefault(
    Schema.Boolean.annotations({ description: "Replace what is at output_path already (never written through)." }),
    false
  )
})
export type WorkspaceExportInput = typeof WorkspaceExportInput.Type

export const WorkspaceExportResult = Schema.Struct({
  ...WorkspaceResultFields,
  workspace_path: Schema.String,
  output_path: Schema.String,
  format: Schema.Literal("tree", "tar"),
  artifact_type: Schema.Literal("file", "directory"),
  entry_count: Schema.Int,
  bytes_written: Schema.Int,
  /** Entries exported with their setuid/setgid bits cleared. */
  neutralised: Schema.Array(Schema.String)
})
export type WorkspaceExportResult = typeof WorkspaceExportResult.Type

export const WorkspaceDiffInput = Schema.Struct({ workspace_id: WorkspaceId })

export const DiffChange = Schema.Literal("added", "modified", "deleted", "type_changed")

export const WorkspaceDiffEntry = Schema.Struct({
  path: Schema.String,
  change: DiffChange,
  /** What it is now (for a deletion: what it was). */
  artifact_type: Schema.Literal("file", "directory", "symlink", "other"),
  /** Content that is not UTF-8 text (or over 1 MiB): compared by digest, never shown as text. */
  binary: Schema.Boolean,
  /** Its change is in `patch` (not for binary content, links, mode changes, or text too large to diff in time). */
  in_patch: Schema.Boolean
})

export const WorkspaceDiffResult = Schema.Struct({
  ...WorkspaceResultFields,
  changed: Schema.Boolean,
  summary: Schema.Struct({
    total: Schema.Int,
    added: Schema.Int,
    modified: Schema.Int,
    deleted: Schema.Int,
    type_changed: Schema.Int,
    binary: Schema.Int
  }),
  /** Every change, sorted by path, up to 10,000 (`entries_truncated` says when there were more). */
  entries: Schema.Array(WorkspaceDiffEntry),
  entries_truncated: Schema.Boolean,
  /** A unified diff of the text changes, against the baseline taken at create (after the seed). */
  patch: Schema.String,
  /** The patch was cut to the size a result may carry; entries still list every change. */
  patch_truncated: Schema.Boolean
})
export type WorkspaceDiffResult = typeof WorkspaceDiffResult.Type
