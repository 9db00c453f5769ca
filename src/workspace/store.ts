/**
 * A workspace on the host: `<stateDir>/workspaces/<id>/` with its record
 * (workspace.json, written atomically), its command journal (journal.jsonl,
 * appended), its VM's sockets and logs, its scratch disk (the guest's whole
 * writable layer, /workspace included), and while its VM boots a claim
 * (src/machine/claims.ts). Operations on it are serialised across processes
 * by its machine lock `workspaces/<id>` (src/machine/lock.ts).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { EntryLimits } from "../archive/policy.js"
import { JournalEntry } from "../contract/workspace/exec.js"
import { LastCommand, WorkspaceSeed } from "../contract/workspace/lifecycle.js"
import { SecretMetadata } from "../contract/workspace/secrets.js"
import { SnapshotRecord } from "../contract/workspace/snapshots.js"
import { recordDir } from "../host/recordDir.js"
import type { MachineLock } from "../machine/lock.js"
import { MachineRecordFields } from "../machine/record.js"
import { DiskLayers, SINGLE_LAYER } from "./disk/layers.js"
import { type WorkspacePaths, workspacePaths, workspacesRoot } from "./paths.js"

export { type WorkspacePaths, workspacePaths, workspacesRoot } from "./paths.js"

/** A record's seed; workspaces made before seed origins have none, and took theirs from seed_path or nothing. */
const StoredSeed = Schema.transform(
  Schema.Struct({
    ...WorkspaceSeed.fields,
    origin_kind: Schema.optional(WorkspaceSeed.fields.origin_kind),
    origin_ref: Schema.optional(WorkspaceSeed.fields.origin_ref)
  }),
  WorkspaceSeed,
  {
    strict: true,
    decode: (seed) => ({
      ...seed,
      origin_kind: seed.origin_kind ?? (seed.seed_path === null ? "empty" as const : "manual" as const),
      origin_ref: seed.origin_ref ?? null
    }),
    encode: (seed) => seed
  }
)

export const WorkspaceRecord = Schema.Struct({
  ...MachineRecordFields,
  /** Commands finished (journaled). */
  command_count: Schema.Int,
  /** Commands started: the last sequence number given out (commands run at once finish in any order). */
  commands_started: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  last_command: Schema.NullOr(LastCommand),
  workspace_seed: StoredSeed,
  /** Host channels its VM is booted with (src/workspace/channels.ts); older workspaces have one. */
  channels: Schema.optionalWith(Schema.Int, { default: () => 1 }),
  /** Its secrets' names and kinds; the values are in secrets.json beside it (src/workspace/secrets/store.ts). */
  secrets: Schema.optionalWith(Schema.Array(SecretMetadata), { default: () => [] }),
  /** For people (workspace_create, workspace_update); older workspaces have none. */
  name: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  labels: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /**
   * The last change made in it: set at create, by every exec's journaling, and by the operations
   * that change its files, services or shells. Null in workspaces older than it (lastActivityAt below).
   */
  last_activity_at: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** Its disk's layers (src/workspace/disk/layers.ts); older workspaces have the one raw disk. */
  disk: Schema.optionalWith(DiskLayers, { default: () => SINGLE_LAYER }),
  /** Named states of its disk, "baseline" (taken at create) first. */
  snapshots: Schema.optionalWith(Schema.Array(SnapshotRecord), { default: () => [] }),
  reset_count: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  last_reset_at: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** The workspace it was forked from (workspace_fork), if any. */
  forked_from: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})
export type WorkspaceRecord = typeof WorkspaceRecord.Type

/** The disk's layer a workspace's VM writes, as a path. */
export const topLayerPath = (paths: WorkspacePaths, record: WorkspaceRecord) => Path.join(paths.dir, record.disk.top)


/** What a workspace's diff baseline may hold; a larger /workspace gets none (diff says why). */
export const BASELINE_LIMITS: EntryLimits = { maxEntries: 200_000, maxBytes: 512 * 1024 * 1024, maxDepth: 128 }


const records = recordDir(WorkspaceRecord, workspacesRoot, (stateDir, id) => workspacePaths(stateDir, id).record)

export const readWorkspace = records.read
export const writeWorkspace = records.write
export const listWorkspaces = records.list
export const decodeWorkspaceRecord = records.decode


/**
 * When it was last active: its record's, or for a workspace older than that
 * field, its last command's end, else its creation.
 */
export const lastActivityAt = (record: WorkspaceRecord) =>
  record.last_activity_at ?? record.last_command?.finished_at ?? record.created_at

/**
 * How stale last_activity_at may be: an operation that finds it newer than
 * this leaves the record alone, so a stream of shell keystrokes writes it at
 * most once per second rather than once per key.
 */
export const ACTIVITY_RESOLUTION_MS = 1000

/** One operation at a time on a workspace, across processes. */
export const workspaceLock = (id: string): MachineLock => ({ root: "workspaces", id })

/**
 * A journal line: the public entry, and where the guest keeps all of each
 * stream the entry had to cut (the host's own record of it; the entry's text
 * is the guest's output and could print anything).
 */
export const JournalLine = Schema.Struct({
  ...JournalEntry.fields,
  kept_at: Schema.optionalWith(
    Schema.Struct({ stdout: Schema.optional(Schema.String), stderr: Schema.optional(Schema.String) }),
    { default: () => ({}) }
  )
})
export type JournalLine = typeof JournalLine.Type

const encodeEntry = Schema.encodeSync(Schema.parseJson(JournalLine))
const decodeEntry = Schema.decodeUnknownOption(Schema.parseJson(JournalLine))

/** One line per exec, appended with O_APPEND (atomic for a line this size on a local filesystem). */
export const appendJournal = (paths: WorkspacePaths, entry: JournalLine) =>
  Effect.sync(() => Fs.appendFileSync(paths.journal, `${encodeEntry(entry)}\n`, { mode: 0o600 }))

/** The journal in start order (commands run at once are appended as they finish); a line cut short by a crash is skipped. */
export const readJournal = (paths: WorkspacePaths) =>
  Effect.sync(() => {
    let text = ""
    try {
      text = Fs.readFileSync(paths.journal, "utf8")
    } catch {
      return []
    }
    return text.split("\n").flatMap((line) => (line ? Option.toArray(decodeEntry(line)) : [])).sort((a, b) =>
      a.sequence - b.sequence
    )
  })
