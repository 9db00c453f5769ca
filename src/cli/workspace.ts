/** `pyro workspace create | sync push | exec | status | logs | delete`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  WorkspaceCreateInput,
  type WorkspaceDeleteResult,
  WorkspaceExecInput,
  WorkspaceIdInput,
  type WorkspaceLogs,
  type WorkspaceSummary,
  WorkspaceSyncPushInput,
  type WorkspaceSyncResult
} from "../contract/workspace.js"
import { WorkspaceManager } from "../services/WorkspaceManager.js"
import { setExitCode } from "./exitCode.js"
import { restoreForcedArg } from "./forcedArgs.js"
import { json, sizing } from "./options.js"
import { printJson, writeStderr, writeStdout } from "./output.js"
import { decodeArgs } from "./usage.js"

const workspaceId = Args.text({ name: "WORKSPACE_ID" })

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

export const formatSummary = (s: WorkspaceSummary) =>
  [
    `Workspace ID: ${s.workspace_id}`,
    `Environment: ${s.environment}`,
    `State: ${s.state}`,
    `Workspace path: ${s.workspace_path}`,
    `Execution mode: ${s.execution_mode}`,
    `Resources: ${s.vcpu_count} vCPU, ${s.mem_mib} MiB, network ${s.network_enabled ? "on" : "off"}`,
    `Seed: ${
      s.workspace_seed.mode === "empty"
        ? "empty"
        : `${s.workspace_seed.mode} ${s.workspace_seed.seed_path} (${s.workspace_seed.files} files, ${mib(s.workspace_seed.bytes)})`
    }`,
    `Commands: ${s.command_count}${
      s.last_command
        ? ` (last: #${s.last_command.sequence} exit_code=${s.last_command.exit_code} at ${s.last_command.finished_at})`
        : ""
    }`,
    `Created: ${s.created_at}`,
    `Expires: ${s.expires_at}`
  ].join("\n") + "\n"

const formatSync = (r: WorkspaceSyncResult) =>
  `[workspace-sync] workspace_id=${r.workspace_id} dest=${r.dest} kind=${r.kind} files=${r.files} directories=${r.directories} ` +
  `symlinks=${r.symlinks} bytes=${r.bytes} duration_ms=${r.duration_ms}\n` +
  (r.neutralised.length > 0 ? `setuid/setgid bits cleared on: ${r.neutralised.join(", ")}\n` : "")

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

const seedPath = Options.text("seed-path").pipe(
  Options.optional,
  Options.withDescription("A host directory or .tar/.tar.gz/.tgz copied into /workspace")
)

const create = Command.make(
  "create",
  {
    environment: Args.text({ name: "ENV" }),
    seedPath,
    vcpuCount: sizing.vcpuCount,
    memMib: sizing.memMib,
    ttlSeconds: sizing.ttlSeconds,
    network: sizing.network,
    allowHostCompat: sizing.allowHostCompat,
    json
  },
  (args) =>
    Effect.gen(function*() {
      const input = yield* decodeArgs(WorkspaceCreateInput, {
        environment: args.environment,
        vcpu_count: args.vcpuCount,
        mem_mib: args.memMib,
        ttl_seconds: args.ttlSeconds,
        network: args.network,
        allow_host_compat: args.allowHostCompat,
        ...(Option.isSome(args.seedPath) ? { seed_path: args.seedPath.value } : {})
      })
      const workspaces = yield* WorkspaceManager
      yield* Effect.ignore(workspaces.reapExpired)
      const summary = yield* workspaces.create(input)
      yield* args.json ? printJson(summary) : writeStdout(formatSummary(summary))
    })
).pipe(Command.withDescription("Create a persistent workspace, optionally seeded from a host directory or archive"))

const push = Command.make(
  "push",
  {
    workspaceId,
    source: Args.text({ name: "SOURCE_PATH" }),
    dest: Options.text("dest").pipe(Options.withDefault("/workspace"), Options.withDescription("Guest directory under /workspace")),
    json
  },
  (args) =>
    Effect.gen(function*() {
      const input = yield* decodeArgs(WorkspaceSyncPushInput, {
        workspace_id: args.workspaceId,
        source_path: args.source,
        dest: args.dest
      })
      const result = yield* (yield* WorkspaceManager).syncPush(input)
      yield* args.json ? printJson(result) : writeStdout(formatSync(result))
    })
).pipe(Command.withDescription("Copy a host directory or archive into a workspace"))

const sync = Command.make("sync").pipe(
  Command.withDescription("Move files between the host and a workspace"),
  Command.withSubcommands([push])
)

const exec = Command.make(
  "exec",
  {
    workspaceId,
    timeoutSeconds: sizing.timeoutSeconds,
    json,
    command: Args.text({ name: "COMMAND" }).pipe(Args.atLeast(1))
  },
  (args) =>
    Effect.gen(function*() {
      const input = yield* decodeArgs(WorkspaceExecInput, {
        workspace_id: args.workspaceId,
        command: args.command.map(restoreForcedArg),
        timeout_seconds: args.timeoutSeconds
      })
      const result = yield* (yield* WorkspaceManager).exec(
        input,
        args.json ? {} : { onOutput: (fd, bytes) => (fd === 1 ? writeStdout(bytes) : writeStderr(bytes)) }
      )
      if (args.json) {
        yield* printJson(result)
      } else {
        yield* writeStderr(
          `[workspace-exec] workspace_id=${result.workspace_id} sequence=${result.sequence} cwd=${result.cwd} ` +
            `execution_mode=${result.execution_mode} exit_code=${result.exit_code} duration_ms=${result.duration_ms}\n`
        )
      }
      yield* setExitCode(result.exit_code)
    })
).pipe(Command.withDescription("Run a command in a workspace's /workspace; exits with its exit code"))

const byId = <A>(
  name: string,
  description: string,
  run: (ws: WorkspaceManager["Type"], id: string) => Effect.Effect<A, unknown>,
  format: (a: A) => string
) =>
  Command.make(name, { workspaceId, json }, (args) =>
    Effect.gen(function*() {
      const { workspace_id } = yield* decodeArgs(WorkspaceIdInput, { workspace_id: args.workspaceId })
      const result = yield* run(yield* WorkspaceManager, workspace_id)
      yield* args.json ? printJson(result) : writeStdout(format(result))
    })).pipe(Command.withDescription(description))

export const workspaceCommand = Command.make("workspace").pipe(
  Command.withDescription("Persistent workspaces: a VM whose /workspace keeps its files between commands"),
  Command.withSubcommands([
    create,
    sync,
    exec,
    byId("status", "Show a workspace's summary", (ws, id) => ws.status(id), formatSummary),
    byId("logs", "Show every command run in a workspace, with its result", (ws, id) => ws.logs(id), formatLogs),
    byId("delete", "Delete a workspace and everything in it (idempotent)", (ws, id) => ws.remove(id), formatDelete)
  ])
)
