/**
 * snapshot_create | list | delete and workspace_reset: named states of a
 * workspace's disk, and going back to one; workspace_fork: a running
 * workspace copied into a new one.
 */
import * as Effect from "effect/Effect"
import { WorkspaceIdInput, WorkspaceSummary } from "../../contract/workspace/lifecycle.js"
import {
  BASELINE_SNAPSHOT,
  type Snapshot,
  SnapshotCreateInput,
  SnapshotCreateResult,
  SnapshotDeleteInput,
  SnapshotDeleteResult,
  type SnapshotListResult,
  SnapshotListResult as SnapshotListResultSchema,
  WorkspaceForkInput,
  WorkspaceResetInput
} from "../../contract/workspace/snapshots.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { hints, operation } from "../operation.js"
import { labelOptions, workspaceIdArg } from "./args.js"
import { formatSummary } from "./lifecycle.js"

const snapshotNameArg = { field: "snapshot_name", name: "NAME" } as const

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
const snapshotLine = (s: Snapshot) => `${s.snapshot_name}  ${s.kind}  ${s.created_at}  ${mib(s.bytes_written)}`

export const snapshotCreate = operation({
  tool: "snapshot_create",
  sdkMethod: "createSnapshot",
  description: "Save a workspace's whole disk (/workspace and every other file its commands wrote) as a named " +
    "snapshot, to go back to later with workspace_reset. Taken in milliseconds without copying: the guest's " +
    "filesystem is synced and frozen for that moment, and later writes go to a new layer. Running commands, shells " +
    "and services are not part of it. A workspace keeps up to 32; \"baseline\" (the state right after create) is taken " +
    "by create.",
  input: SnapshotCreateInput,
  output: SnapshotCreateResult,
  annotations: hints("Snapshot a workspace", false, false, false),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.snapshotCreate(input.workspace_id, input.snapshot_name)),
  cli: {
    path: ["workspace", "snapshot", "create"],
    description: "Save a workspace's disk as a named snapshot",
    args: [workspaceIdArg, snapshotNameArg],
    human: (r) => `${snapshotLine(r.snapshot)}  (${r.frozen ? "frozen" : "stopped"}, ${r.duration_ms} ms)\n`
  }
})

export const snapshotList = operation({
  tool: "snapshot_list",
  sdkMethod: "listSnapshots",
  description: "A workspace's snapshots, oldest first: name, kind (baseline or named), when, and the bytes each holds " +
    "of its own.",
  input: WorkspaceIdInput,
  output: SnapshotListResultSchema,
  sdkShorthand: "workspace_id",
  annotations: hints("List snapshots", true, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.snapshotList(input.workspace_id)),
  cli: {
    path: ["workspace", "snapshot", "list"],
    description: "List a workspace's snapshots",
    args: [workspaceIdArg],
    human: (r: SnapshotListResult) =>
      r.count === 0 ? "no snapshots\n" : r.snapshots.map(snapshotLine).join("\n") + "\n"
  }
})

export const snapshotDelete = operation({
  tool: "snapshot_delete",
  sdkMethod: "deleteSnapshot",
  description: "Delete a named snapshot (the baseline stays). Its disk space is freed once nothing else reads through it.",
  input: SnapshotDeleteInput,
  output: SnapshotDeleteResult,
  annotations: hints("Delete a snapshot", false, true, false),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.snapshotDelete(input.workspace_id, input.snapshot_name)),
  cli: {
    path: ["workspace", "snapshot", "delete"],
    description: "Delete a named snapshot",
    args: [workspaceIdArg, snapshotNameArg],
    human: (r) => `deleted snapshot ${r.snapshot_name}\n`
  }
})

export const workspaceReset = operation({
  tool: "workspace_reset",
  sdkMethod: "resetWorkspace",
  description: "Bring a workspace back to a snapshot (default \"baseline\": right after create and seed): its VM is " +
    "replaced by a fresh one on the snapshot's disk, so every file change since is gone and no command, shell or " +
    "service is running; the command journal is cleared. The workspace_id, its snapshots, secrets and the diff " +
    "baseline stay; reset_count and last_reset_at count it. The normal retry step after a change went wrong. " +
    "Returns the status.",
  input: WorkspaceResetInput,
  output: WorkspaceSummary,
  annotations: hints("Reset a workspace", false, true, false),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.reset(input.workspace_id, input.snapshot ?? BASELINE_SNAPSHOT)),
  cli: {
    path: ["workspace", "reset"],
    description: "Bring a workspace back to a snapshot (default: baseline)",
    args: [workspaceIdArg],
    human: formatSummary
  }
})

export const workspaceFork = operation({
  tool: "workspace_fork",
  sdkMethod: "forkWorkspace",
  description: "Copy a workspace into a new one, memory and disk, in about a second: its files, and everything running " +
    "in it (shells, services, a half-done build) runs on in the copy, which gets its own id, clock, random pool and " +
    "hostname; from then on the two are independent. Use it to try several fixes in parallel from one prepared state. " +
    "name and labels are the copy's (default: the source's). A stopped workspace gives a copy of its disk, started " +
    "by its first use. Published ports are not copied. Returns the new workspace's status, with forked_from.",
  input: WorkspaceForkInput,
  output: WorkspaceSummary,
  annotations: hints("Fork a workspace", false, false, false),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.fork(input)),
  cli: {
    path: ["workspace", "fork"],
    description: "Copy a workspace, memory and disk, into a new one",
    args: [workspaceIdArg],
    repeatedOptions: { labels: labelOptions("The copy's label KEY=VALUE (repeatable; default: the source's labels)") },
    human: formatSummary
  }
})
