/**
 * workspace_export (a file or directory under /workspace onto the host) and
 * workspace_diff (/workspace against its baseline), both from the guest's
 * tar of the path, which the host reads through the archive policy: the
 * guest is untrusted here.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { SourceError } from "../../archive/errors.js"
import { tarFileBytes } from "../../archive/tarFile.js"
import { WorkspaceFileError } from "../../contract/errors.js"
import type { WorkspaceDiffResult, WorkspaceExportInput } from "../../contract/workspace/export.js"
import { WORKSPACE_PATH } from "../../contract/workspace/paths.js"
import { Caller } from "../../services/Caller.js"
import { PyroConfig } from "../../services/PyroConfig.js"
import { type WorkspaceGuest, WorkspaceManager } from "../../services/WorkspaceManager.js"
import { diffTrees, TreeUnreadable } from "../diff.js"
import { checkOutputPath, type ExportTarget, writeExport } from "../export.js"
import { guestTar } from "../guestFs.js"
import { configuredExportPath } from "../import/roots.js"
import { BASELINE_LIMITS } from "../store.js"
import { redactorFor } from "../secrets/store.js"

export const exportWorkspace = (input: WorkspaceExportInput) =>
  Effect.gen(function*() {
    // The host path is checked before the guest is asked for anything.
    const outputPath = yield* configuredExportPath(input.output_path)
    const target: ExportTarget = {
      workspaceId: input.workspace_id,
      path: input.path,
      outputPath,
      format: input.format,
      overwrite: input.overwrite
    }
    yield* checkOutputPath(target)
    const ws = yield* WorkspaceManager
    return yield* ws.withGuest(input.workspace_id, ({ connection, record }) =>
      Effect.map(writeExport(guestTar(connection, record.id, input.path), target), (outcome) => ({
        workspace_id: record.id,
        workspace_path: input.path,
        output_path: outputPath,
        format: input.format,
        artifact_type: outcome.artifactType,
        entry_count: outcome.entryCount,
        bytes_written: outcome.bytesWritten,
        neutralised: outcome.neutralised,
        execution_mode: record.execution_mode
      })))
  })

/** At most `max` bytes of `patch`, cut at a line's end. */
const cutPatch = (patch: string, max: number) => {
  if (Buffer.byteLength(patch) <= max) return { patch, truncated: false }
  const head = Buffer.from(patch).subarray(0, max).toString("utf8")
  return { patch: head.slice(0, head.lastIndexOf("\n") + 1), truncated: true }
}

/**
 * /workspace now against its baseline (workspace_diff; workspace_summary
 * without the patch). Fails with why when it cannot compare.
 */
export const compareWithBaseline = ({ connection, paths, record }: WorkspaceGuest, options: { readonly patch: boolean }) =>
  Effect.gen(function*() {
    const problem = (detail: string) =>
      new WorkspaceFileError({ workspaceId: record.id, operation: "diff", path: WORKSPACE_PATH, problem: "failed", detail })
    if (!Fs.existsSync(paths.baseline)) {
      const why = Fs.existsSync(paths.baselineMissing)
        ? Fs.readFileSync(paths.baselineMissing, "utf8")
        : "it was created by an older pyro"
      return yield* problem(`this workspace has no baseline to compare with: ${why}`)
    }
    return yield* diffTrees(
      () => tarFileBytes(paths.baseline, false),
      guestTar(connection, record.id, WORKSPACE_PATH),
      BASELINE_LIMITS,
      options
    ).pipe(
      Effect.mapError((e) =>
        e instanceof TreeUnreadable || e instanceof SourceError ? problem(`cannot compare: ${e.message}`) : e
      )
    )
  })

export const diffWorkspace = (workspaceId: string) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const caller = yield* Caller
    const ws = yield* WorkspaceManager
    return yield* ws.withGuest(workspaceId, (guest) =>
      Effect.gen(function*() {
        const { paths, record } = guest
        const diff = yield* compareWithBaseline(guest, { patch: true })
        // A model gets the patch to the operator's budget; the operator gets what the host holds for any output.
        const max = caller.kind === "operator" ? config.maxOutputBytes : config.outputBudgetBytes
        const redactor = yield* redactorFor(paths.dir)
        const { patch, truncated } = cutPatch(redactor.text(diff.patch), max)
        return {
          workspace_id: record.id,
          changed: diff.total > 0,
          summary: { total: diff.total, ...diff.counts },
          entries: diff.entries,
          entries_truncated: diff.entries.length < diff.total,
          patch,
          patch_truncated: truncated,
          execution_mode: record.execution_mode
        } satisfies WorkspaceDiffResult
      }))
  })
