/** workspace_exec: one command in a workspace's /workspace. */
import * as Effect from "effect/Effect"
import { WorkspaceExecInput, WorkspaceExecResult } from "../../contract/workspace/exec.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { hints, operation } from "../operation.js"
import { secretEnvOptions, workspaceIdArg } from "./args.js"

export const workspaceExec = operation({
  tool: "workspace_exec",
  sdkMethod: "execWorkspace",
  description: "Run a command in a workspace, in /workspace, and return stdout, stderr, exit_code and its sequence number. " +
    "Files persist for later commands. Several commands may run at once (from this client or others), each with " +
    "its own sequence, numbered in the order they started. " +
    "A command still running after timeout_seconds is killed and reports exit_code 124.",
  input: WorkspaceExecInput,
  output: WorkspaceExecResult,
  carriesOutput: true,
  annotations: hints("Run a command in a workspace", false, false, false, true),
  handler: (input, context) => Effect.flatMap(WorkspaceManager, (ws) => ws.exec(input, context)),
  cli: {
    path: ["workspace", "exec"],
    description: "Run a command in a workspace's /workspace; exits with its exit code",
    args: [workspaceIdArg, { field: "command", name: "COMMAND", variadic: true }],
    repeatedOptions: { secret_env: secretEnvOptions },
    streamsOutput: true,
    human: (r) => ({
      stderr: `[workspace-exec] workspace_id=${r.workspace_id} sequence=${r.sequence} cwd=${r.cwd} ` +
        `execution_mode=${r.execution_mode} exit_code=${r.exit_code} duration_ms=${r.duration_ms}\n`
    }),
    exitCode: (r) => r.exit_code
  }
})
