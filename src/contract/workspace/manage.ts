/**
 * workspace_list, workspace_update and workspace_summary: finding workspaces
 * by name and labels, changing those and the expiry, and what happened in one.
 */
import * as Schema from "effect/Schema"
import { TtlSeconds } from "../common.js"
import { DiffChange } from "./export.js"
import { LabelFilter, LabelKey, Labels, MAX_LABELS, WorkspaceName } from "./labels.js"
import { WorkspaceId } from "./paths.js"
import { WorkspaceState } from "./lifecycle.js"
import { PublishedPort, ServiceState } from "./services.js"

export const WorkspaceListInput = Schema.Struct({ labels: Schema.optional(LabelFilter) })
export type WorkspaceListInput = typeof WorkspaceListInput.Type

const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })

/** What identifies a workspace to a person, in a listing and a summary. */
export const WorkspaceIdentityFields = {
  workspace_id: Schema.String,
  name: Schema.NullOr(Schema.String),
  labels: StringMap,
  state: WorkspaceState,
  environment: Schema.String,
  created_at: Schema.String,
  last_activity_at: Schema.String,
  expires_at: Schema.String
}

export const WorkspaceListEntry = Schema.Struct(WorkspaceIdentityFields)
export type WorkspaceListEntry = typeof WorkspaceListEntry.Type

export const WorkspaceListResult = Schema.Struct({
  count: Schema.Int,
  /** Most recent activity first. */
  workspaces: Schema.Array(WorkspaceListEntry)
})
export type WorkspaceListResult = typeof WorkspaceListResult.Type

export const WorkspaceUpdateInput = Schema.Struct({
  workspace_id: WorkspaceId,
  name: Schema.optional(WorkspaceName.annotations({ description: "A new name (1 to 64 printable characters)." })),
  clear_name: Schema.optional(Schema.Boolean.annotations({ description: "Remove the name (not with name)." })),
  labels: Schema.optional(Labels.annotations({
    description: `Labels to set, merged into the workspace's (a key it has gets the new value); at most ${MAX_LABELS} in all.`
  })),
  remove_labels: Schema.optional(Schema.Array(LabelKey).pipe(
    Schema.maxItems(MAX_LABELS),
    Schema.annotations({ description: "Keys of labels to remove (before labels is merged); a key it lacks is ignored." })
  )),
  clear_labels: Schema.optional(Schema.Boolean.annotations({
    description: "Remove every label first (labels, if given, are then set)."
  })),
  ttl_seconds: Schema.optional(TtlSeconds.annotations({
    description: "A new lifetime, counted from now: the workspace then expires ttl_seconds from this call."
  }))
})
export type WorkspaceUpdateInput = typeof WorkspaceUpdateInput.Type

/** workspace_summary's caps, so a summary stays small enough for a model's context. */
export const SUMMARY_MAX_COMMANDS = 10
export const SUMMARY_MAX_FILES = 50
export const SUMMARY_MAX_SERVICES = 20
/** A command line longer than this is cut (with "…"). */
export const SUMMARY_COMMAND_CHARS = 200

export const SummaryCommand = Schema.Struct({
  sequence: Schema.Int,
  /** The command as a shell line, cut to 200 characters. */
  command: Schema.String,
  exit_code: Schema.Int,
  timed_out: Schema.Boolean,
  duration_ms: Schema.Int,
  finished_at: Schema.String
})

export const SummaryCommands = Schema.Struct({
  count: Schema.Int,
  /** Commands that exited non-zero or timed out. */
  failed_count: Schema.Int,
  /** The last commands run, oldest first, at most 10. */
  recent: Schema.Array(SummaryCommand)
})

export const SummaryFiles = Schema.Struct({
  /** Changes under /workspace since the workspace was created (after its seed), as workspace_diff counts them. */
  total: Schema.Int,
  added: Schema.Int,
  modified: Schema.Int,
  deleted: Schema.Int,
  type_changed: Schema.Int,
  /** The first 50 changes by path; workspace_diff has all of them and the patch. */
  changes: Schema.Array(Schema.Struct({ path: Schema.String, change: DiffChange })),
  truncated: Schema.Boolean
})

export const SummaryServices = Schema.Struct({
  count: Schema.Int,
  running_count: Schema.Int,
  /** At most 20, in start order. */
  services: Schema.Array(Schema.Struct({
    service_name: Schema.String,
    state: ServiceState,
    exit_code: Schema.NullOr(Schema.Int),
    published_ports: Schema.Array(PublishedPort)
  })),
  truncated: Schema.Boolean
})

/** What workspace_summary returns (WorkspaceSummary, despite its name, is workspace_status's payload). */
export const WorkspaceReport = Schema.Struct({
  ...WorkspaceIdentityFields,
  commands: SummaryCommands,
  /** Null when it could not be read: the VM is not running, or see `notes`. */
  files: Schema.NullOr(SummaryFiles),
  services: Schema.NullOr(SummaryServices),
  /** Secret names only. */
  secrets: Schema.Array(Schema.String),
  /** Snapshot names, oldest first; resets so far and the last one's time; the workspace it was forked from. */
  snapshots: Schema.Array(Schema.String),
  reset_count: Schema.Int,
  last_reset_at: Schema.NullOr(Schema.String),
  forked_from: Schema.NullOr(Schema.String),
  /** What the summary could not tell, and why. */
  notes: Schema.Array(Schema.String),
  /** All of the above as a few lines a person can read. */
  text: Schema.String
})
export type WorkspaceReport = typeof WorkspaceReport.Type
