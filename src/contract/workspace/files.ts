/** workspace_file_list | read | write and workspace_patch_apply (the original's 3.2.0 names and defaults). */
import * as Schema from "effect/Schema"
import { withDefault } from "../vm.js"
import { WorkspaceId } from "./paths.js"
import { WORKSPACE_PATH, WorkspacePath, WorkspaceResultFields } from "./paths.js"

/** workspace_file_read's default max_bytes, as the original's DEFAULT_WORKSPACE_FILE_READ_MAX_BYTES. */
export const DEFAULT_WORKSPACE_FILE_READ_MAX_BYTES = 65536
/** The most one read returns and one write takes (the original's guest WORKSPACE_FILE_MAX_BYTES). */
export const WORKSPACE_FILE_MAX_BYTES = 1024 * 1024
/** The largest patch workspace_patch_apply takes. */
export const WORKSPACE_PATCH_MAX_BYTES = 1024 * 1024
/** Entries one listing returns at most; `truncated` says when there were more. */
export const WORKSPACE_LIST_MAX_ENTRIES = 10_000

export const ArtifactType = Schema.Literal("file", "directory", "symlink", "other")
export type ArtifactType = typeof ArtifactType.Type

/** Text of at most `max` bytes once UTF-8 encoded (what the guest takes), however many characters that is. */
export const utf8Text = (max: number, what: string) =>
  Schema.String.pipe(
    Schema.filter((s) => Buffer.byteLength(s) <= max || `must be at most ${max} bytes of UTF-8 (${what})`, {
      jsonSchema: { maxLength: max }
    })
  )

export const ListRecursive = withDefault(
  Schema.Boolean.annotations({ description: "List everything below path, not only its own entries." }),
  false
)

export const WorkspaceFileListInput = Schema.Struct({
  workspace_id: WorkspaceId,
  path: withDefault(WorkspacePath, WORKSPACE_PATH),
  recursive: ListRecursive
})
export type WorkspaceFileListInput = typeof WorkspaceFileListInput.Type

export const WorkspaceFileEntry = Schema.Struct({
  path: Schema.String,
  artifact_type: ArtifactType,
  size_bytes: Schema.Int,
  /** Permission bits, octal text ("644"). */
  mode: Schema.String,
  modified_at: Schema.String,
  link_target: Schema.optional(Schema.String)
})
export type WorkspaceFileEntry = typeof WorkspaceFileEntry.Type

export const WorkspaceFileListResult = Schema.Struct({
  ...WorkspaceResultFields,
  path: Schema.String,
  recursive: Schema.Boolean,
  artifact_type: ArtifactType,
  entries: Schema.Array(WorkspaceFileEntry),
  count: Schema.Int,
  /** More entries existed than one listing returns (WORKSPACE_LIST_MAX_ENTRIES). */
  truncated: Schema.Boolean
})
export type WorkspaceFileListResult = typeof WorkspaceFileListResult.Type

/** A read's max_bytes: 1 byte to WORKSPACE_FILE_MAX_BYTES, DEFAULT_WORKSPACE_FILE_READ_MAX_BYTES unless given. */
export const ReadMaxBytes = withDefault(
  Schema.Int.pipe(
    Schema.between(1, WORKSPACE_FILE_MAX_BYTES, {
      message: () => `must be a whole number from 1 to ${WORKSPACE_FILE_MAX_BYTES}`
    }),
    Schema.annotations({ description: "Return at most this many bytes of the file (truncated says if there was more)." })
  ),
  DEFAULT_WORKSPACE_FILE_READ_MAX_BYTES
)

export const WorkspaceFileReadInput = Schema.Struct({
  workspace_id: WorkspaceId,
  path: WorkspacePath,
  max_bytes: ReadMaxBytes
})
export type WorkspaceFileReadInput = typeof WorkspaceFileReadInput.Type

export const WorkspaceFileReadResult = Schema.Struct({
  ...WorkspaceResultFields,
  path: Schema.String,
  /** The bytes read: as text when they are UTF-8, else base64 (encoding says which). */
  content: Schema.String,
  encoding: Schema.Literal("utf-8", "base64"),
  size_bytes: Schema.Int,
  bytes_read: Schema.Int,
  truncated: Schema.Boolean
})
export type WorkspaceFileReadResult = typeof WorkspaceFileReadResult.Type

export const WorkspaceFileWriteInput = Schema.Struct({
  workspace_id: WorkspaceId,
  path: WorkspacePath,
  text: utf8Text(WORKSPACE_FILE_MAX_BYTES, "one write").pipe(
    Schema.annotations({ description: "The file's whole new content, as UTF-8 text. Parent directories are created." })
  )
})
export type WorkspaceFileWriteInput = typeof WorkspaceFileWriteInput.Type

export const WorkspaceFileWriteResult = Schema.Struct({
  ...WorkspaceResultFields,
  path: Schema.String,
  bytes_written: Schema.Int
})
export type WorkspaceFileWriteResult = typeof WorkspaceFileWriteResult.Type

export const WorkspacePatchApplyInput = Schema.Struct({
  workspace_id: WorkspaceId,
  patch: utf8Text(WORKSPACE_PATCH_MAX_BYTES, "one patch").pipe(
    Schema.minLength(1),
    Schema.annotations({
      description: "A unified diff (git diff or diff -u): paths relative to /workspace (a/ and b/ prefixes dropped) or " +
        "absolute under it; files added, modified or deleted. Every hunk must match exactly (no fuzz): on any " +
        "conflict nothing is changed."
    })
  )
})
export type WorkspacePatchApplyInput = typeof WorkspacePatchApplyInput.Type

export const PatchedFile = Schema.Struct({
  path: Schema.String,
  change: Schema.Literal("added", "modified", "deleted")
})

export const WorkspacePatchApplyResult = Schema.Struct({
  ...WorkspaceResultFields,
  changed: Schema.Boolean,
  files: Schema.Array(PatchedFile),
  summary: Schema.Struct({ total: Schema.Int, added: Schema.Int, modified: Schema.Int, deleted: Schema.Int })
})
export type WorkspacePatchApplyResult = typeof WorkspacePatchApplyResult.Type
