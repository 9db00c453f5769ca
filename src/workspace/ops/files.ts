/**
 * workspace_file_list | read | write and workspace_patch_apply, over the
 * agent's file tool (./../guestFs.ts), run while anything else runs in the
 * workspace: none holds the workspace's lock while it works (it is taken
 * only to boot the VM if it is not running).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { WorkspaceFileError, WorkspacePatchConflict } from "../../contract/errors.js"
import {
  WORKSPACE_FILE_MAX_BYTES,
  WORKSPACE_LIST_MAX_ENTRIES,
  type WorkspaceFileEntry,
  type WorkspaceFileListInput,
  type WorkspaceFileReadInput,
  type WorkspaceFileWriteInput,
  type WorkspacePatchApplyInput
} from "../../contract/workspace/files.js"
import { iso } from "../../machine/record.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { syncGuestDisk } from "../guestDisk.js"
import { deleteGuestFile, type GuestEntry, listGuestFiles, readGuestFile, writeGuestFile } from "../guestFs.js"
import { redactorFor } from "../secrets/store.js"
import { applyFilePatch, parseWorkspacePatch } from "../patch.js"

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * Bytes as text when they are UTF-8 (a read cut short may end inside a
 * character: that tail is dropped from the text), else base64; says which.
 */
export const textOrBase64 = (bytes: Uint8Array, truncated: boolean) => {
  for (let cut = 0; cut <= (truncated ? 3 : 0) && cut <= bytes.byteLength; cut++) {
    try {
      return { content: fatalUtf8.decode(bytes.subarray(0, bytes.byteLength - cut)), encoding: "utf-8" as const }
    } catch {
      // try one byte shorter: a character cut by the limit
    }
  }
  return { content: Buffer.from(bytes).toString("base64"), encoding: "base64" as const }
}

const entryOf = (e: GuestEntry): WorkspaceFileEntry => ({
  path: e.path,
  artifact_type: e.type,
  size_bytes: e.size,
  mode: e.mode.toString(8),
  modified_at: iso(e.mtime * 1000),
  ...(e.type === "symlink" ? { link_target: e.target } : {})
})

export const listFiles = (input: WorkspaceFileListInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, ({ connection, record }) =>
      Effect.map(
        listGuestFiles(connection, record.id, input.path, input.recursive, WORKSPACE_LIST_MAX_ENTRIES),
        (listing) => ({
          workspace_id: record.id,
          path: input.path,
          recursive: input.recursive,
          artifact_type: listing.self.type,
          entries: listing.entries.map(entryOf),
          count: listing.entries.length,
          truncated: listing.truncated,
          execution_mode: record.execution_mode
        })
      )))

export const readFile = (input: WorkspaceFileReadInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, ({ connection, paths, record }) =>
      Effect.zipWith(readGuestFile(connection, record.id, input.path, input.max_bytes), redactorFor(paths.dir), ({ content, size }, redactor) => {
        const truncated = content.byteLength < size
        return {
          workspace_id: record.id,
          path: input.path,
          // A secret a command wrote into a file is hidden like one it printed.
          ...textOrBase64(redactor.bytes(content), truncated),
          size_bytes: size,
          bytes_read: content.byteLength,
          truncated,
          execution_mode: record.execution_mode
        }
      })))

export const writeFile = (input: WorkspaceFileWriteInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, ({ connection, record }) =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(input.text)
        const written = yield* writeGuestFile(connection, record.id, input.path, bytes, WORKSPACE_FILE_MAX_BYTES)
        yield* syncGuestDisk(connection)
        return { workspace_id: record.id, path: input.path, bytes_written: written, execution_mode: record.execution_mode }
      }), { activity: true }))

/**
 * Every file the patch names is read and every hunk applied in memory first;
 * only when all of them apply exactly is anything written, so a conflict
 * anywhere changes nothing.
 */
export const applyPatch = (input: WorkspacePatchApplyInput) =>
  Effect.flatMap(WorkspaceManager, (ws) =>
    ws.withGuest(input.workspace_id, ({ connection, record }) =>
      Effect.gen(function*() {
        const conflict = (detail: string, path?: string) =>
          new WorkspacePatchConflict({ workspaceId: record.id, detail, ...(path !== undefined ? { path } : {}) })
        const files = yield* Either.match(parseWorkspacePatch(input.patch), {
          onLeft: (p) => Effect.fail(conflict(p.reason, p.path)),
          onRight: Effect.succeed
        })
        const planned: Array<{ readonly path: string; readonly change: "added" | "modified" | "deleted"; readonly next: string | null }> = []
        for (const file of files) {
          // A link is not patched: writing would replace it with a file (a conflict says so instead).
          const current = yield* readGuestFile(connection, record.id, file.path, WORKSPACE_FILE_MAX_BYTES, false).pipe(
            Effect.flatMap((r): Effect.Effect<string | undefined, WorkspacePatchConflict> => {
              if (r.content.byteLength < r.size) {
                return Effect.fail(conflict(`larger than ${WORKSPACE_FILE_MAX_BYTES} bytes: not patched`, file.path))
              }
              const text = textOrBase64(r.content, false)
              return text.encoding === "utf-8"
                ? Effect.succeed(text.content)
                : Effect.fail(conflict("not UTF-8 text: not patched", file.path))
            }),
            Effect.catchIf(
              (e): e is WorkspaceFileError => e instanceof WorkspaceFileError,
              (e): Effect.Effect<string | undefined, WorkspaceFileError | WorkspacePatchConflict> =>
                e.problem === "not_found"
                  ? Effect.succeed(undefined)
                  : e.problem === "wrong_type"
                  ? Effect.fail(conflict(`${e.detail}: not patched`, file.path))
                  : Effect.fail(e)
            )
          )
          const next = yield* Either.match(applyFilePatch(file, current), {
            onLeft: (p) => Effect.fail(conflict(p.reason, p.path)),
            onRight: Effect.succeed
          })
          // Checked now, not when written: a file that the patch would grow past the limit fails before any write.
          if (next !== null && Buffer.byteLength(next) > WORKSPACE_FILE_MAX_BYTES) {
            return yield* conflict(`the patched file would be larger than ${WORKSPACE_FILE_MAX_BYTES} bytes: not patched`, file.path)
          }
          planned.push({ path: file.path, change: file.change, next })
        }
        for (const { next, path } of planned) {
          if (next === null) yield* deleteGuestFile(connection, record.id, path)
          else yield* writeGuestFile(connection, record.id, path, new TextEncoder().encode(next), WORKSPACE_FILE_MAX_BYTES)
        }
        yield* syncGuestDisk(connection)
        const count = (change: string) => planned.filter((p) => p.change === change).length
        return {
          workspace_id: record.id,
          changed: planned.length > 0,
          files: planned.map(({ change, path }) => ({ path, change })),
          summary: { total: planned.length, added: count("added"), modified: count("modified"), deleted: count("deleted") },
          execution_mode: record.execution_mode
        }
      }), { activity: true }))
