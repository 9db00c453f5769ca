/**
 * workspace_stop / workspace_start and the disk tools on a stopped workspace:
 * workspace_disk_list | read | export (the original's 3.1.0 names). The disk
 * is the workspace's writable layer: every file created or changed since its
 * environment's image, read offline.
 */
import * as Schema from "effect/Schema"
import { withDefault } from "../vm.js"
import {
  ListRecursive,
  ReadMaxBytes,
  WorkspaceFileEntry,
  WorkspaceFileListResult,
  WorkspaceFileReadResult
} from "./files.js"
import { HostPath, normalizedString, normalizeGuestPath, WORKSPACE_PATH, WorkspaceId, WorkspaceResultFields } from "./paths.js"

export const DiskPath = normalizedString(
  "A path in the guest: absolute (any directory, since the disk holds the whole writable layer), or relative to " +
    "/workspace; no ..",
  normalizeGuestPath
)

export const DiskArtifactType = Schema.Literal("file", "directory", "symlink", "other", "whiteout")

export const WorkspaceDiskListInput = Schema.Struct({
  workspace_id: WorkspaceId,
  path: withDefault(DiskPath, WORKSPACE_PATH),
  recursive: ListRecursive
})
export type WorkspaceDiskListInput = typeof WorkspaceDiskListInput.Type

/** As workspace_file_list's entries, with whiteouts: deleted from the environment's image (overlayfs's mark of it). */
export const WorkspaceDiskEntry = Schema.Struct({ ...WorkspaceFileEntry.fields, artifact_type: DiskArtifactType })
export type WorkspaceDiskEntry = typeof WorkspaceDiskEntry.Type

export const WorkspaceDiskListResult = Schema.Struct({
  ...WorkspaceFileListResult.fields,
  artifact_type: DiskArtifactType,
  entries: Schema.Array(WorkspaceDiskEntry)
})
export type WorkspaceDiskListResult = typeof WorkspaceDiskListResult.Type

export const WorkspaceDiskReadInput = Schema.Struct({
  workspace_id: WorkspaceId,
  path: DiskPath,
  /** The original's DEFAULT_WORKSPACE_DISK_READ_MAX_BYTES is 65536 too. */
  max_bytes: ReadMaxBytes
})
export type WorkspaceDiskReadInput = typeof WorkspaceDiskReadInput.Type

/** As workspace_file_read's. */
export const WorkspaceDiskReadResult = WorkspaceFileReadResult
export type WorkspaceDiskReadResult = typeof WorkspaceDiskReadResult.Type

export const WorkspaceDiskExportInput = Schema.Struct({
  workspace_id: WorkspaceId,
  output_path: HostPath.annotations({
    description: "Where on the host to write the raw ext4 image: a path that does not exist yet, whose parent does."
  })
})
export type WorkspaceDiskExportInput = typeof WorkspaceDiskExportInput.Type

export const WorkspaceDiskExportResult = Schema.Struct({
  ...WorkspaceResultFields,
  output_path: Schema.String,
  disk_format: Schema.Literal("ext4"),
  /** The image's size (sparse: its holes take no room on the host). */
  bytes_written: Schema.Int
})
export type WorkspaceDiskExportResult = typeof WorkspaceDiskExportResult.Type
