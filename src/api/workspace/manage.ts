/** workspace_list, workspace_update, workspace_summary: workspaces a person can find, rename, label and read about. */
import * as Effect from "effect/Effect"
import { WorkspaceIdInput, WorkspaceSummary } from "../../contract/workspace/lifecycle.js"
import {
  type WorkspaceListResult,
  WorkspaceListInput,
  WorkspaceListResult as WorkspaceListResultSchema,
  WorkspaceReport,
  WorkspaceUpdateInput
} from "../../contract/workspace/manage.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { listWorkspaces } from "../../workspace/ops/list.js"
import { summarizeWorkspace } from "../../workspace/ops/summary.js"
import { hints, operation } from "../operation.js"
import { labelOptions, workspaceIdArg } from "./args.js"
import { formatSummary } from "./lifecycle.js"

/** One row per workspace, columns padded to their widest cell. */
const formatList = (r: WorkspaceListResult) => {
  if (r.count === 0) return "no workspaces\n"
  const rows = [
    ["ID", "NAME", "STATE", "ENVIRONMENT", "LAST ACTIVITY", "EXPIRES", "LABELS"],
    ...r.workspaces.map((w) => [
      w.workspace_id,
      w.name ?? "-",
      w.state,
      w.environment,
      w.last_activity_at,
      w.expires_at,
      Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-"
    ])
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => [...row[i]!].length)))
  return rows.map((row) => row.map((cell, i) => cell + " ".repeat(widths[i]! - [...cell].length)).join("  ").trimEnd()).join("\n") + "\n"
}

export const workspaceList = operation({
  tool: "workspace_list",
  sdkMethod: "listWorkspaces",
  description: "Every workspace that has not expired, most recently active first: id, name, labels, state, environment, " +
    "created_at, last_activity_at, expires_at. With labels, only those that have all of them.",
  input: WorkspaceListInput,
  output: WorkspaceListResultSchema,
  annotations: hints("List workspaces", true, false, true),
  handler: (input) => listWorkspaces(input),
  cli: {
    path: ["workspace", "list"],
    description: "List workspaces (a table; --label KEY=VALUE keeps those that have it)",
    repeatedOptions: { labels: labelOptions("Only workspaces with this label KEY=VALUE (repeatable: all must match)") },
    human: formatList
  }
})

export const workspaceUpdate = operation({
  tool: "workspace_update",
  sdkMethod: "updateWorkspace",
  description: "Change a workspace's name, labels (merged: labels sets keys, remove_labels drops keys, clear_labels drops " +
    "all first) or lifetime (ttl_seconds: it expires that long from now). Returns its status.",
  input: WorkspaceUpdateInput,
  output: WorkspaceSummary,
  annotations: hints("Update a workspace", false, false, false),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.update(input)),
  cli: {
    path: ["workspace", "update"],
    description: "Rename a workspace, change its labels, or give it a new lifetime from now",
    args: [workspaceIdArg],
    optionNames: { remove_labels: "clear-label" },
    optionHelp: { remove_labels: "Remove the label KEY (repeatable)" },
    repeatedOptions: { labels: labelOptions("Set the label KEY=VALUE (repeatable; merged into the workspace's labels)") },
    human: formatSummary
  }
})

export const workspaceSummary = operation({
  tool: "workspace_summary",
  sdkMethod: "summarizeWorkspace",
  description: "What happened in a workspace, short enough to hand to a person: its name, labels and state; commands " +
    "run (count, failures, the last 10 with exit codes); files changed under /workspace since it was created (counts " +
    "and up to 50 paths, no patch: workspace_diff has that); services; secret names. `text` says it all in a few " +
    "lines. Changed files and services are read only while its VM runs (a summary never starts a stopped one).",
  input: WorkspaceIdInput,
  output: WorkspaceReport,
  sdkShorthand: "workspace_id",
  annotations: hints("Summarize a workspace", true, false, true),
  handler: (input) => summarizeWorkspace(input.workspace_id),
  cli: {
    path: ["workspace", "summary"],
    description: "What happened in a workspace: commands, changed files, services",
    args: [workspaceIdArg],
    human: (r) => r.text
  }
})
