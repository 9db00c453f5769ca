/** workspace_create, workspace_status, workspace_logs, workspace_delete. */
import * as Effect from "effect/Effect"
import { WorkspaceCreateInput, type WorkspaceDeleteResult, WorkspaceDeleteResult as WorkspaceDeleteResultSchema, WorkspaceIdInput, type WorkspaceSeed, type WorkspaceSummary, WorkspaceSummary as WorkspaceSummarySchema } from "../../contract/workspace/lifecycle.js"
import { type WorkspaceLogs, WorkspaceLogs as WorkspaceLogsSchema } from "../../contract/workspace/exec.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { createDescriptionWith } from "../../workspace/project/describe.js"
import { networkCli } from "../network.js"
import { hints, operation } from "../operation.js"
import { labelOptions, secretsOptions, workspaceIdArg } from "./args.js"


const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

const formatSeed = (seed: WorkspaceSeed) => {
  const counts = `(${seed.files} files, ${mib(seed.bytes)})`
  switch (seed.origin_kind) {
    case "empty":
      return "empty"
    case "manual":
      return `${seed.mode} ${seed.seed_path} ${counts}`
    case "project_path":
    case "repo_url":
      return `Git-tracked files of ${seed.origin_ref} ${counts}`
  }
}

export const formatSummary = (s: WorkspaceSummary) =>
  [
    `Workspace ID: ${s.workspace_id}`,
    ...(s.name === null ? [] : [`Name: ${s.name}`]),
    ...(Object.keys(s.labels).length === 0 ? [] : [`Labels: ${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(", ")}`]),
    `Environment: ${s.environment}`,
    `State: ${s.state}`,
    `Workspace path: ${s.workspace_path}`,
    `Execution mode: ${s.execution_mode}`,
    `Resources: ${s.vcpu_count} vCPU, ${s.mem_mib} MiB, network ${s.network_policy}${
      s.allow_hosts === null ? "" : ` (only ${s.allow_hosts.join(", ") || "nothing"})`
    }`,
    `Seed: ${formatSeed(s.workspace_seed)}`,
    ...(s.secrets.length > 0 ? [`Secrets: ${s.secrets.map((x) => `${x.name} (${x.source_kind})`).join(", ")}`] : []),
    `Commands: ${s.command_count}${
      s.last_command
        ? ` (last: #${s.last_command.sequence} exit_code=${s.last_command.exit_code} at ${s.last_command.finished_at})`
        : ""
    }`,
    ...(s.snapshots.length > 0 ? [`Snapshots: ${s.snapshots.join(", ")}`] : []),
    ...(s.reset_count > 0 ? [`Resets: ${s.reset_count} (last at ${s.last_reset_at})`] : []),
    ...(s.forked_from !== null ? [`Forked from: ${s.forked_from}`] : []),
    `Created: ${s.created_at}`,
    `Last activity: ${s.last_activity_at}`,
    `Expires: ${s.expires_at}`
  ].join("\n") + "\n"

const formatLogs = (logs: WorkspaceLogs) =>
  logs.entries.length === 0
    ? `no commands run in workspace ${logs.workspace_id}\n`
    : logs.entries.map((e) =>
      [
        `#${e.sequence} ${JSON.stringify(e.command)} exit_code=${e.exit_code} duration_ms=${e.duration_ms} at ${e.finished_at}`,
        ...(e.stdout ? [e.stdout.replace(/\n?$/, "\n").replace(/^/gm, "  ").trimEnd()] : []),
        ...(e.stderr ? [e.stderr.replace(/\n?$/, "\n").replace(/^/gm, "  ! ").trimEnd()] : [])
      ].join("\n")
    ).join("\n") + "\n"

const formatDelete = (r: WorkspaceDeleteResult) =>
  r.deleted ? `deleted workspace ${r.workspace_id}\n` : `workspace ${r.workspace_id} was already gone\n`

export const workspaceCreate = operation({
  tool: "workspace_create",
  sdkMethod: "createWorkspace",
  description: "Create a persistent workspace: a Linux VM whose /workspace (and every other file it writes) survives " +
    "between commands, until workspace_delete or ttl_seconds after creation. Optionally seeded from a host directory or " +
    ".tar/.tar.gz/.tgz (seed_path), copied in before this returns; optionally named and labelled for people and " +
    "workspace_list. Returns workspace_id for workspace_exec.",
  input: WorkspaceCreateInput,
  output: WorkspaceSummarySchema,
  annotations: hints("Create a workspace", false, false, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.create(input)),
  describeWith: createDescriptionWith,
  cli: {
    path: ["workspace", "create"],
    description: "Create a persistent workspace, optionally seeded from a host directory or archive",
    args: [{ field: "environment", name: "ENV" }],
    optionHelp: { seed_path: "A host directory or .tar/.tar.gz/.tgz copied into /workspace", ...networkCli.optionHelp },
    optionNames: networkCli.optionNames,
    repeatedOptions: { secrets: secretsOptions, labels: labelOptions("A label KEY=VALUE to find the workspace by (repeatable)") },
    before: Effect.flatMap(WorkspaceManager, (ws) => Effect.ignore(ws.reapExpired)),
    human: formatSummary
  }
})

export const workspaceStatus = operation({
  tool: "workspace_status",
  sdkMethod: "statusWorkspace",
  description: "A workspace's status: name, labels, environment, state, sizing, command_count, last_command, seed, " +
    "last_activity_at, expiry. (workspace_summary tells what happened in it.)",
  input: WorkspaceIdInput,
  output: WorkspaceSummarySchema,
  sdkShorthand: "workspace_id",
  annotations: hints("Workspace status", true, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.status(input.workspace_id)),
  cli: { path: ["workspace", "status"], description: "Show a workspace's summary", args: [workspaceIdArg], human: formatSummary }
})

export const workspaceLogs = operation({
  tool: "workspace_logs",
  sdkMethod: "logsWorkspace",
  description: "Every command run in a workspace, in order, with its result (output kept up to 64 KiB per stream per entry).",
  input: WorkspaceIdInput,
  output: WorkspaceLogsSchema,
  carriesOutput: true,
  sdkShorthand: "workspace_id",
  annotations: hints("Workspace command journal", true, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.logs(input.workspace_id)),
  cli: {
    path: ["workspace", "logs"],
    description: "Show every command run in a workspace, with its result",
    args: [workspaceIdArg],
    human: formatLogs
  }
})

export const workspaceDelete = operation({
  tool: "workspace_delete",
  sdkMethod: "deleteWorkspace",
  description: "Delete a workspace: stop its VM and remove its disk, files and journal. Deleting one already gone succeeds.",
  input: WorkspaceIdInput,
  output: WorkspaceDeleteResultSchema,
  sdkShorthand: "workspace_id",
  annotations: hints("Delete a workspace", false, true, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.remove(input.workspace_id)),
  cli: {
    path: ["workspace", "delete"],
    description: "Delete a workspace and everything in it (idempotent)",
    args: [workspaceIdArg],
    human: formatDelete
  }
})
