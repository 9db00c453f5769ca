/** workspace_sync_push: host files into a workspace. */
import * as Schema from "effect/Schema"
import { withDefault } from "../vm.js"
import { HostPath, WORKSPACE_PATH, WorkspaceDest, WorkspaceId } from "./paths.js"

export const WorkspaceSyncPushInput = Schema.Struct({
  workspace_id: WorkspaceId,
  source_path: HostPath.annotations({ description: "A host directory or .tar/.tar.gz/.tgz archive." }),
  dest: withDefault(WorkspaceDest, WORKSPACE_PATH)
})
export type WorkspaceSyncPushInput = typeof WorkspaceSyncPushInput.Type

export const WorkspaceSyncResult = Schema.Struct({
  workspace_id: Schema.String,
  source_path: Schema.String,
  dest: Schema.String,
  kind: Schema.Literal("directory", "archive"),
  files: Schema.Int,
  directories: Schema.Int,
  symlinks: Schema.Int,
  hardlinks: Schema.Int,
  bytes: Schema.Int,
  /** Entries imported with their setuid/setgid bits cleared. */
  neutralised: Schema.Array(Schema.String),
  duration_ms: Schema.Int
})
export type WorkspaceSyncResult = typeof WorkspaceSyncResult.Type
