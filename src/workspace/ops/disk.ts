/**
 * workspace_disk_list | read | export: a stopped workspace's disk, read
 * offline (../disk/), under the workspace's lock so that no boot starts
 * meanwhile; a running workspace is refused (stop it first).
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { WorkspaceExportFailed } from "../../contract/errors.js"
import { WORKSPACE_LIST_MAX_ENTRIES } from "../../contract/workspace/files.js"
import type {
  WorkspaceDiskEntry,
  WorkspaceDiskExportInput,
  WorkspaceDiskExportResult,
  WorkspaceDiskListInput,
  WorkspaceDiskListResult,
  WorkspaceDiskReadInput,
  WorkspaceDiskReadResult
} from "../../contract/workspace/disk.js"
import { runHostCommand } from "../../host/command.js"
import { iso } from "../../machine/record.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { settledSuperblock } from "../disk/image.js"
import { BASE_LAYER, type DiskLayers, flattenTo } from "../disk/layers.js"
import { type DiskEntry, diskError, type DiskTarget, listTree, readDiskFile, resolvePath } from "../disk/tree.js"
import { configuredExportPath } from "../import/roots.js"
import { redactorFor } from "../secrets/store.js"
import { textOrBase64 } from "./files.js"

/** The stopped workspace's disk, settled (../disk/image.ts), for `use`. */
const onStoppedDisk = <A, E, R>(
  workspaceId: string,
  operation: string,
  path: string,
  use: (target: DiskTarget, dir: string, mode: WorkspaceDiskListResult["execution_mode"]) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withStoppedDisk(workspaceId, operation, ({ paths, record }) =>
      Effect.scoped(Effect.gen(function*() {
        const unreadable = (detail: string) =>
          diskError({ workspaceId, operation, path, image: paths.scratch, inodeSize: 0 }, "failed", `cannot read the disk: ${detail}`)
        const image = yield* rawView(paths.dir, record.disk).pipe(Effect.mapError((e) => unreadable(e.detail)))
        const base = { workspaceId, operation, path, image, inodeSize: 0 }
        const superblock = yield* settledSuperblock(image).pipe(Effect.mapError((e) => unreadable(e.detail)))
        return yield* use({ ...base, inodeSize: superblock.inodeSize }, paths.dir, record.execution_mode)
      }))))

/**
 * The disk as one raw ext4 image for debugfs: the base itself while it is the
 * only layer, else the layers flattened into a scratch copy (sparse), which
 * the scope removes. Reading it (a journal replayed included) never changes a layer.
 */
const rawView = (dir: string, layers: DiskLayers) =>
  layers.top === BASE_LAYER
    ? Effect.succeed(Path.join(dir, BASE_LAYER))
    : Effect.acquireRelease(
      Effect.as(flattenTo(dir, layers, Path.join(dir, VIEW_FILE)), Path.join(dir, VIEW_FILE)),
      (view) => Effect.sync(() => Fs.rmSync(view, { force: true }))
    )

/** Where rawView flattens a layered disk (in the workspace's directory, under its lock). */
const VIEW_FILE = "disk-view.raw"

const entryOf = (e: DiskEntry): WorkspaceDiskEntry => ({
  path: e.path,
  artifact_type: e.facts.type,
  size_bytes: e.facts.size,
  mode: e.facts.permissions.toString(8),
  // Within what a date can hold.
  modified_at: iso(Math.max(-8.64e12, Math.min(8.64e12, e.facts.mtime)) * 1000),
  ...(e.linkTarget !== undefined ? { link_target: e.linkTarget } : {})
})

export const listDisk = (input: WorkspaceDiskListInput) =>
  onStoppedDisk(input.workspace_id, "disk_list", input.path, (target, _, mode) =>
    Effect.gen(function*() {
      const self = yield* resolvePath(target, input.path)
      const listing = self.facts.type === "directory"
        ? yield* listTree(target, self.ino, input.path, input.recursive, WORKSPACE_LIST_MAX_ENTRIES)
        : { entries: [], truncated: false }
      return {
        workspace_id: input.workspace_id,
        path: input.path,
        recursive: input.recursive,
        artifact_type: self.facts.type,
        entries: listing.entries.map(entryOf),
        count: listing.entries.length,
        truncated: listing.truncated,
        execution_mode: mode
      } satisfies WorkspaceDiskListResult
    }))

export const readDisk = (input: WorkspaceDiskReadInput) =>
  onStoppedDisk(input.workspace_id, "disk_read", input.path, (target, dir, mode) =>
    Effect.gen(function*() {
      const self = yield* resolvePath(target, input.path)
      if (self.facts.type !== "file") {
        return yield* diskError(target, "wrong_type", `it is a ${self.facts.type} on the disk, not a regular file`)
      }
      const content = yield* readDiskFile(target, self.ino, self.facts.size, input.max_bytes)
      const truncated = content.byteLength < self.facts.size
      // A secret a command wrote into a file is hidden like one it printed.
      const redactor = yield* redactorFor(dir)
      return {
        workspace_id: input.workspace_id,
        path: input.path,
        ...textOrBase64(redactor.bytes(content), truncated),
        size_bytes: self.facts.size,
        bytes_read: content.byteLength,
        truncated,
        execution_mode: mode
      } satisfies WorkspaceDiskReadResult
    }))

/**
 * The raw image, copied sparse (only the blocks the guest wrote take room)
 * beside the output, then linked into place: never over anything there.
 */
export const exportDisk = (input: WorkspaceDiskExportInput) =>
  Effect.gen(function*() {
    const outputPath = yield* configuredExportPath(input.output_path)
    const failed = (detail: string) =>
      new WorkspaceExportFailed({ workspaceId: input.workspace_id, path: "disk", detail })
    const parent = Path.dirname(outputPath)
    if (!Fs.statSync(parent, { throwIfNoEntry: false })?.isDirectory()) {
      return yield* failed(`output_path's directory ${parent} does not exist`)
    }
    if (Fs.lstatSync(outputPath, { throwIfNoEntry: false })) return yield* failed(`output_path ${outputPath} exists`)
    return yield* onStoppedDisk(input.workspace_id, "disk_export", "/", (target, _, mode) =>
      Effect.gen(function*() {
        const staged = Path.join(parent, `.pyro-disk-${process.pid}-${Date.now()}.partial`)
        const copied = yield* runHostCommand("cp", ["--sparse=always", "--reflink=auto", "--", target.image, staged]).pipe(
          Effect.zipRight(Effect.try(() => {
            Fs.chmodSync(staged, 0o600)
            Fs.linkSync(staged, outputPath) // EEXIST if something appeared meanwhile
            return Fs.statSync(outputPath).size
          })),
          Effect.mapError((e) => failed(`could not copy the disk: ${e.message}`)),
          Effect.ensuring(Effect.sync(() => Fs.rmSync(staged, { force: true })))
        )
        return {
          workspace_id: input.workspace_id,
          output_path: outputPath,
          disk_format: "ext4",
          bytes_written: copied,
          execution_mode: mode
        } satisfies WorkspaceDiskExportResult
      }))
  })
