/** Persistent workspaces: a VM whose /workspace and whole writable layer outlive commands and processes. */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ReapResult } from "../contract/vm.js"
import type {
  InvalidInput,
  VmLimitReached,
  WorkspaceImportFailed,
  WorkspaceNotFound,
  WorkspaceNotStopped,
  WorkspaceSnapshotError
} from "../contract/errors.js"
import type {
  SnapshotCreateResult,
  SnapshotDeleteResult,
  SnapshotListResult,
  WorkspaceForkInput
} from "../contract/workspace/snapshots.js"
import type { WorkspaceCreateInput, WorkspaceDeleteResult, WorkspaceSummary } from "../contract/workspace/lifecycle.js"
import type { WorkspaceExecInput, WorkspaceExecResult, WorkspaceLogs } from "../contract/workspace/exec.js"
import type { WorkspaceSyncPushInput, WorkspaceSyncResult } from "../contract/workspace/sync.js"
import type { WorkspaceUpdateInput } from "../contract/workspace/manage.js"
import type { BootError, GuestChannelError } from "../vm/errors.js"
import type { OutputSink } from "../vm/execCommand.js"
import type { ImportSourceError, UnsafeImportEntry } from "../workspace/import/errors.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import type { WorkspacePaths, WorkspaceRecord } from "../workspace/store.js"
import type { EnvironmentError } from "./EnvironmentStore.js"
import type { KernelError } from "./KernelStore.js"

export type WorkspaceError =
  | EnvironmentError
  | KernelError
  | BootError
  | GuestChannelError
  | VmLimitReached
  | InvalidInput
  | WorkspaceNotFound
  | WorkspaceImportFailed
  | UnsafeImportEntry
  | ImportSourceError
  | WorkspaceSnapshotError

/** A running workspace as its operations see it: its record, paths, and this process's connection to its agent. */
export interface WorkspaceGuest {
  readonly record: WorkspaceRecord
  readonly paths: WorkspacePaths
  readonly connection: GuestConnection
}

export class WorkspaceManager extends Context.Tag("pyro/WorkspaceManager")<WorkspaceManager, {
  /** Boot a workspace VM and apply the seed before returning. */
  readonly create: (input: WorkspaceCreateInput) => Effect.Effect<WorkspaceSummary, WorkspaceError>
  /** Copy a host directory or archive into /workspace (or under it). Not atomic: see docs/public-contract.md. */
  readonly syncPush: (input: WorkspaceSyncPushInput) => Effect.Effect<WorkspaceSyncResult, WorkspaceError>
  readonly exec: (
    input: WorkspaceExecInput,
    options?: { readonly onOutput?: OutputSink }
  ) => Effect.Effect<WorkspaceExecResult, WorkspaceError>
  readonly status: (workspaceId: string) => Effect.Effect<WorkspaceSummary, WorkspaceNotFound>
  readonly logs: (workspaceId: string) => Effect.Effect<WorkspaceLogs, WorkspaceNotFound>
  /**
   * Power its VM off, its disk kept (synced, its filesystem clean); published
   * ports, shells, services and commands in flight end with it. Idempotent.
   */
  readonly stop: (workspaceId: string) => Effect.Effect<WorkspaceSummary, WorkspaceNotFound>
  /** Boot its VM on its disk, as the next exec would; a started one is left as it is. */
  readonly start: (workspaceId: string) => Effect.Effect<WorkspaceSummary, WorkspaceError>
  /**
   * Run `use` on a stopped workspace's disk image, no boot starting meanwhile
   * (the workspace's lock is held); a running workspace fails with
   * `workspace_not_stopped`, naming `operation`. `use` may run host commands
   * and use the host's files (the manager provides both).
   */
  readonly withStoppedDisk: <A, E, R>(
    workspaceId: string,
    operation: string,
    use: (stopped: { readonly record: WorkspaceRecord; readonly paths: WorkspacePaths }) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | WorkspaceNotFound | WorkspaceNotStopped, Exclude<R, CommandExecutor.CommandExecutor | FileSystem.FileSystem>>
  /** Freeze the disk's state as `name` (its guest's filesystem synced and frozen meanwhile if it runs). */
  readonly snapshotCreate: (
    workspaceId: string,
    name: string
  ) => Effect.Effect<SnapshotCreateResult, WorkspaceSnapshotError | GuestChannelError | WorkspaceNotFound>
  readonly snapshotList: (workspaceId: string) => Effect.Effect<SnapshotListResult, WorkspaceNotFound>
  readonly snapshotDelete: (
    workspaceId: string,
    name: string
  ) => Effect.Effect<SnapshotDeleteResult, WorkspaceSnapshotError | WorkspaceNotFound>
  /** The whole sandbox back to snapshot `name`: VM rebooted on it, journal cleared; id, secrets and diff baseline kept. */
  readonly reset: (workspaceId: string, name: string) => Effect.Effect<WorkspaceSummary, WorkspaceError | WorkspaceSnapshotError>
  /**
   * A new workspace from this one, memory and disk (its shells and services run
   * on in the copy); from a stopped one, its disk. Returns the new one's summary.
   */
  readonly fork: (input: WorkspaceForkInput) => Effect.Effect<WorkspaceSummary, WorkspaceError | WorkspaceSnapshotError>
  /** Idempotent: deleting what is already gone succeeds with `deleted: false`. */
  readonly remove: (workspaceId: string) => Effect.Effect<WorkspaceDeleteResult>
  /** Every workspace that has not expired. */
  readonly list: Effect.Effect<ReadonlyArray<WorkspaceSummary>>
  /** Change name, labels or expiry, under the workspace's lock. */
  readonly update: (input: WorkspaceUpdateInput) => Effect.Effect<WorkspaceSummary, InvalidInput | WorkspaceNotFound>
  readonly reapExpired: Effect.Effect<ReapResult>
  /**
   * Run `use` against the workspace's guest, its VM booted first if it is not
   * running (unless `boot` is false: then a VM that is not running fails with
   * `guest_channel_failed`). Calls from any number of processes run at once;
   * nothing here waits for another call to finish. `activity`: `use` changes
   * the workspace (files, services, shells), so once it succeeds the record's
   * last_activity_at is brought up to now (ACTIVITY_RESOLUTION_MS, store.ts).
   */
  readonly withGuest: <A, E, R>(
    workspaceId: string,
    use: (guest: WorkspaceGuest) => Effect.Effect<A, E, R>,
    options?: { readonly boot?: boolean; readonly activity?: boolean }
  ) => Effect.Effect<A, E | WorkspaceError, R>
}>() {}
