/** workspace_export and workspace_diff: results out of the guest. */
import {
  WorkspaceDiffInput,
  WorkspaceDiffResult,
  WorkspaceExportInput,
  WorkspaceExportResult
} from "../../contract/workspace/export.js"
import { diffWorkspace, exportWorkspace } from "../../workspace/ops/export.js"
import { hints, operation } from "../operation.js"
import { workspaceIdArg } from "./args.js"

export const workspaceExport = operation({
  tool: "workspace_export",
  sdkMethod: "exportWorkspace",
  description: "Export one file or directory from /workspace to the host at output_path: the tree itself (format " +
    "\"tree\", default) or one tar archive (\"tar\"). Nothing at output_path is replaced unless overwrite. The guest's " +
    "content is checked on the way: links leading out of the export, devices, FIFOs, names with control characters " +
    "and oversized trees are refused, naming the entry, and nothing is left behind; setuid bits are cleared.",
  input: WorkspaceExportInput,
  output: WorkspaceExportResult,
  // Destructive: with overwrite it replaces what is at output_path.
  annotations: hints("Export workspace files to the host", false, true, false),
  handler: exportWorkspace,
  cli: {
    path: ["workspace", "export"],
    description: "Export one file or directory from /workspace to a host path",
    args: [workspaceIdArg, { field: "path", name: "PATH" }],
    optionNames: { output_path: "output" },
    optionHelp: { output_path: "Host path to write (must not exist unless --overwrite)" },
    human: (r) => ({
      stderr: `[workspace-export] workspace_id=${r.workspace_id} workspace_path=${JSON.stringify(r.workspace_path)} ` +
        `output_path=${JSON.stringify(r.output_path)} format=${r.format} artifact_type=${r.artifact_type} ` +
        `entry_count=${r.entry_count} bytes_written=${r.bytes_written}\n` +
        (r.neutralised.length > 0 ? `setuid/setgid bits cleared on: ${r.neutralised.join(", ")}\n` : "")
    })
  }
})

export const workspaceDiff = operation({
  tool: "workspace_diff",
  sdkMethod: "diffWorkspace",
  description: "What changed in /workspace since the workspace was created (after its seed; the immutable baseline): " +
    "changed, a summary (added, modified, deleted, type_changed, binary), every changed entry, and a unified patch " +
    "of the text changes (binary files are listed, not patched). The patch is cut to a size a result may carry " +
    "(patch_truncated); use workspace_export for the files themselves.",
  input: WorkspaceDiffInput,
  output: WorkspaceDiffResult,
  carriesOutput: true,
  sdkShorthand: "workspace_id",
  annotations: hints("Diff a workspace against its baseline", true, false, true),
  handler: (input) => diffWorkspace(input.workspace_id),
  cli: {
    path: ["workspace", "diff"],
    description: "Show what changed under /workspace since create, as a unified diff",
    args: [workspaceIdArg],
    human: (r) =>
      r.changed
        ? {
          stderr: `[workspace-diff] workspace_id=${r.workspace_id} total=${r.summary.total} added=${r.summary.added} ` +
            `modified=${r.summary.modified} deleted=${r.summary.deleted} type_changed=${r.summary.type_changed} ` +
            `binary=${r.summary.binary}${r.patch_truncated ? " patch_truncated=true" : ""}` +
            `${r.entries_truncated ? " entries_truncated=true" : ""}\n`,
          stdout: r.patch
        }
        : { stdout: "No workspace changes.\n" }
  }
})

