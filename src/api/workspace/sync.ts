/** workspace_sync_push: host files into a workspace. */
import * as Effect from "effect/Effect"
import { WorkspaceSyncPushInput, WorkspaceSyncResult } from "../../contract/workspace/sync.js"
import { WorkspaceManager } from "../../services/WorkspaceManager.js"
import { hints, operation } from "../operation.js"
import { workspaceIdArg } from "./args.js"

export const workspaceSyncPush = operation({
  tool: "workspace_sync_push",
  sdkMethod: "pushWorkspaceSync",
  description: "Copy a host directory or .tar/.tar.gz/.tgz archive into the workspace at dest (default /workspace; must stay " +
    "under /workspace). Existing files are overwritten, others kept. Unsafe entries (absolute paths, .., links leaving the " +
    "destination, devices) are refused before anything is copied; setuid bits are cleared.",
  input: WorkspaceSyncPushInput,
  output: WorkspaceSyncResult,
  annotations: hints("Copy files into a workspace", false, false, true),
  handler: (input) => Effect.flatMap(WorkspaceManager, (ws) => ws.syncPush(input)),
  cli: {
    path: ["workspace", "sync", "push"],
    description: "Copy a host directory or archive into a workspace",
    args: [workspaceIdArg, { field: "source_path", name: "SOURCE_PATH" }],
    optionHelp: { dest: "Guest directory under /workspace" },
    human: (r) =>
      `[workspace-sync] workspace_id=${r.workspace_id} dest=${r.dest} kind=${r.kind} files=${r.files} directories=${r.directories} ` +
      `symlinks=${r.symlinks} bytes=${r.bytes} duration_ms=${r.duration_ms}\n` +
      (r.neutralised.length > 0 ? `setuid/setgid bits cleared on: ${r.neutralised.join(", ")}\n` : "")
  }
})
