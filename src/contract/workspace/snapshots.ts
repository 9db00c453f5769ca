/**
 * snapshot_create | list | delete, workspace_reset and workspace_fork: named
 * states of a workspace's whole disk (copy-on-write layers, not archives), the
 * sandbox brought back from one, and a running workspace copied, memory and
 * disk, into a new one.
 */
import * as Schema from "effect/Schema"
import { Labels, WorkspaceName } from "./labels.js"
import { WorkspaceId } from "./paths.js"

export const BASELINE_SNAPSHOT = "baseline"
/** A workspace keeps at most this many snapshots, the baseline included: each is a layer its disk reads through. */
export const MAX_SNAPSHOTS = 32

export const SnapshotName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: () => "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
  }),
  Schema.annotations({ description: "A snapshot's name: 1 to 64 letters, digits, '.', '_' or '-'." })
)

export const SnapshotKind = Schema.Literal("baseline", "named")

/** A snapshot as results show it. */
export const Snapshot = Schema.Struct({
  snapshot_name: Schema.String,
  /** "baseline": the state right after create and seed, taken by create; "named": snapshot_create's. */
  kind: SnapshotKind,
  created_at: Schema.String,
  /** Host bytes this snapshot's own layer holds: what was written since the layer below it, not the whole disk. */
  bytes_written: Schema.Int
})
export type Snapshot = typeof Snapshot.Type

/** What a workspace's record keeps of a snapshot: the layer it froze. */
export const SnapshotRecord = Schema.Struct({
  ...Snapshot.fields,
  layer: Schema.String
})
export type SnapshotRecord = typeof SnapshotRecord.Type

/** A snapshot name a caller chooses or drops: any but the baseline, refused saying `why`. */
const namedSnapshot = (why: string) => SnapshotName.pipe(Schema.filter((n) => n !== BASELINE_SNAPSHOT || why))

export const SnapshotCreateInput = Schema.Struct({
  workspace_id: WorkspaceId,
  snapshot_name: namedSnapshot(`"${BASELINE_SNAPSHOT}" is the snapshot create takes; choose another name`)
})
export type SnapshotCreateInput = typeof SnapshotCreateInput.Type

export const SnapshotCreateResult = Schema.Struct({
  workspace_id: Schema.String,
  snapshot: Snapshot,
  /** The guest's filesystem was synced and frozen while the layer was taken (false: the workspace was stopped, its disk already clean). */
  frozen: Schema.Boolean,
  duration_ms: Schema.Int
})
export type SnapshotCreateResult = typeof SnapshotCreateResult.Type

export const SnapshotListResult = Schema.Struct({
  workspace_id: Schema.String,
  count: Schema.Int,
  snapshots: Schema.Array(Snapshot)
})
export type SnapshotListResult = typeof SnapshotListResult.Type

export const SnapshotDeleteInput = Schema.Struct({
  workspace_id: WorkspaceId,
  snapshot_name: namedSnapshot(`the ${BASELINE_SNAPSHOT} snapshot cannot be deleted (workspace_reset's default)`)
})
export type SnapshotDeleteInput = typeof SnapshotDeleteInput.Type

export const SnapshotDeleteResult = Schema.Struct({
  workspace_id: Schema.String,
  snapshot_name: Schema.String,
  deleted: Schema.Literal(true)
})
export type SnapshotDeleteResult = typeof SnapshotDeleteResult.Type

export const WorkspaceResetInput = Schema.Struct({
  workspace_id: WorkspaceId,
  // Optional without a default (the handler's), so that a profile can hide it.
  snapshot: Schema.optional(SnapshotName.annotations({
    description: `The snapshot to go back to; default "${BASELINE_SNAPSHOT}", the state right after create and seed.`
  }))
})
export type WorkspaceResetInput = typeof WorkspaceResetInput.Type

export const WorkspaceForkInput = Schema.Struct({
  workspace_id: WorkspaceId,
  name: Schema.optional(WorkspaceName),
  labels: Schema.optional(Labels)
})
export type WorkspaceForkInput = typeof WorkspaceForkInput.Type
