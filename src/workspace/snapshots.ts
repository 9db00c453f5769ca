/**
 * Snapshots and reset of a workspace's disk (docs/architecture.md §"Snapshots
 * and fork"): a snapshot freezes the disk's top layer by putting a new one on
 * top of it (src/workspace/disk/layers.ts), with the guest's filesystem synced
 * and frozen meanwhile when its VM runs; a reset throws the top layer away and
 * boots the VM on a new one over the snapshot's. Each runs under the
 * workspace's lock.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { type WorkspaceNotFound, WorkspaceSnapshotError } from "../contract/errors.js"
import {
  BASELINE_SNAPSHOT,
  MAX_SNAPSHOTS,
  type Snapshot,
  type SnapshotCreateResult,
  type SnapshotRecord
} from "../contract/workspace/snapshots.js"
import { iso, vmmAlive } from "../machine/record.js"
import type { GuestChannelError, GuestRequestFailed } from "../vm/errors.js"
import { SCRATCH_DRIVE } from "../vm/qemu/args.js"
import { connectQmp } from "../vm/qemu/qmp.js"
import { layerOnTop } from "../vm/qemu/snapshot.js"
import { frozenScratch } from "../vm/protocol/freeze.js"
import type { GuestConnection } from "../vm/protocol/mux.js"
import { addLayer, type DiskLayers, dropUnused, layerBytes } from "./disk/layers.js"
import { workspacePaths, type WorkspaceRecord, writeWorkspace } from "./store.js"

/** QMP answers a block command in milliseconds; this only bounds a VM that stopped answering. */
const QMP_TIMEOUT_MS = 10_000

/** `body` with the workspace's record, under its lock (WorkspaceManagerLive's `locked`). */
export type Locked = <A, E, R>(
  id: string,
  body: (record: WorkspaceRecord) => Effect.Effect<A, E, R>
) => Effect.Effect<A, E | WorkspaceNotFound, R>

export interface SnapshotHost<E> {
  readonly stateDir: string
  readonly locked: Locked
  readonly withConnection: <A, E2, R>(
    record: WorkspaceRecord,
    use: (connection: GuestConnection) => Effect.Effect<A, E2, R>
  ) => Effect.Effect<A, E2 | GuestChannelError, R>
  /** Its VM booted on its disk's top layer (under the lock already held). */
  readonly ensureRunning: (record: WorkspaceRecord) => Effect.Effect<WorkspaceRecord, E, CommandExecutor.CommandExecutor>
  /** Its VM and published ports gone at once: what it had in memory is being thrown away. */
  readonly discardVm: (record: WorkspaceRecord) => Effect.Effect<void>
}

export const publicSnapshot = ({ layer: _, ...snapshot }: SnapshotRecord): Snapshot => snapshot

const problem = (record: WorkspaceRecord, name: string | undefined, kind: WorkspaceSnapshotError["problem"], detail: string) =>
  new WorkspaceSnapshotError({ workspaceId: record.id, ...(name !== undefined ? { snapshotName: name } : {}), problem: kind, detail })

export const makeSnapshots = <E>(host: SnapshotHost<E>) => {
  const dirOf = (record: WorkspaceRecord) => workspacePaths(host.stateDir, record.id).dir
  const save = (record: WorkspaceRecord) => writeWorkspace(host.stateDir, record).pipe(Effect.orDie)
  const failed = (record: WorkspaceRecord, name: string | undefined) => (e: { readonly message: string }) =>
    problem(record, name, "failed", e.message)

  /**
   * The top layer frozen as `name`, a new one over it. A running VM's guest
   * syncs and freezes its filesystem while QEMU switches layers, so the frozen
   * one is a clean filesystem; a stopped one's disk is clean already.
   */
  const take = (record: WorkspaceRecord, name: string, kind: Snapshot["kind"]) =>
    Effect.gen(function*() {
      if (record.snapshots.some((s) => s.snapshot_name === name)) {
        return yield* problem(record, name, "exists", "a snapshot of that name exists (snapshot_delete it first, or choose another name)")
      }
      if (record.snapshots.length >= MAX_SNAPSHOTS) {
        return yield* problem(record, name, "limit_reached", `a workspace keeps at most ${MAX_SNAPSHOTS} snapshots: delete one first`)
      }
      const started = Date.now()
      const dir = dirOf(record)
      const frozen = record.disk.top
      const running = vmmAlive(record)
      const next = yield* addLayer(dir, record.disk, frozen).pipe(Effect.mapError(failed(record, name)))
      const switched = running
        ? host.withConnection(record, (connection) =>
          Effect.scoped(Effect.zipRight(
            frozenScratch(connection),
            Effect.flatMap(connectQmp(workspacePaths(host.stateDir, record.id).qmpSocket, QMP_TIMEOUT_MS), (qmp) =>
              layerOnTop(qmp, SCRATCH_DRIVE, Path.join(dir, next.name)))
          )))
        : Effect.void
      yield* switched.pipe(
        Effect.mapError((e: GuestChannelError | GuestRequestFailed | { readonly message: string }) => failed(record, name)(e)),
        Effect.tapError(() => Effect.sync(() => Fs.rmSync(Path.join(dir, next.name), { force: true })))
      )
      const snapshot: SnapshotRecord = {
        snapshot_name: name,
        kind,
        created_at: iso(Date.now()),
        bytes_written: yield* layerBytes(dir, frozen),
        layer: frozen
      }
      const updated: WorkspaceRecord = { ...record, disk: next.layers, snapshots: [...record.snapshots, snapshot] }
      yield* save(updated)
      return {
        record: updated,
        result: {
          workspace_id: record.id,
          snapshot: publicSnapshot(snapshot),
          frozen: running,
          duration_ms: Date.now() - started
        } satisfies SnapshotCreateResult
      }
    })

  const create = (id: string, name: string) => host.locked(id, (record) => Effect.map(take(record, name, "named"), (t) => t.result))

  /** The baseline, taken by create (under its lock) once /workspace is seeded. */
  const takeBaseline = (record: WorkspaceRecord) => Effect.map(take(record, BASELINE_SNAPSHOT, "baseline"), (t) => t.record)

  const list = (record: WorkspaceRecord) => ({
    workspace_id: record.id,
    count: record.snapshots.length,
    snapshots: record.snapshots.map(publicSnapshot)
  })

  const find = (record: WorkspaceRecord, name: string) => {
    const snapshot = record.snapshots.find((s) => s.snapshot_name === name)
    if (snapshot) return Effect.succeed(snapshot)
    const names = record.snapshots.map((s) => s.snapshot_name)
    return Effect.fail(problem(
      record,
      name,
      "not_found",
      names.length > 0 ? `no such snapshot; it has ${names.join(", ")}` : "no such snapshot; it has none (made before snapshots)"
    ))
  }

  /** Forget the snapshot; a layer nothing else reads through any more is deleted. */
  const remove = (id: string, name: string) =>
    host.locked(id, (record) =>
      Effect.gen(function*() {
        yield* find(record, name)
        const snapshots = record.snapshots.filter((s) => s.snapshot_name !== name)
        const disk: DiskLayers = yield* dropUnused(dirOf(record), record.disk, snapshots.map((s) => s.layer))
        yield* save({ ...record, snapshots, disk })
        return { workspace_id: id, snapshot_name: name, deleted: true as const }
      }))

  /**
   * The whole sandbox back to `name`: the VM (processes, shells, services)
   * discarded, a new top layer over the snapshot's, the journal cleared, the
   * VM booted on it. The id, snapshots, secrets (put back at boot) and diff
   * baseline stay.
   */
  const reset = (id: string, name: string) =>
    host.locked(id, (record) =>
      Effect.gen(function*() {
        const snapshot = yield* find(record, name)
        yield* host.discardVm(record)
        const dir = dirOf(record)
        const next = yield* addLayer(dir, record.disk, snapshot.layer).pipe(Effect.mapError(failed(record, name)))
        const disk = yield* dropUnused(dir, next.layers, record.snapshots.map((s) => s.layer))
        yield* Effect.sync(() => Fs.rmSync(workspacePaths(host.stateDir, id).journal, { force: true }))
        const now = iso(Date.now())
        const cleared: WorkspaceRecord = {
          ...record,
          vmm: null,
          disk,
          command_count: 0,
          commands_started: 0,
          last_command: null,
          reset_count: record.reset_count + 1,
          last_reset_at: now,
          last_activity_at: now
        }
        yield* save(cleared)
        return yield* host.ensureRunning(cleared)
      }))

  return { create, takeBaseline, list, remove, reset }
}
