/** workspace_file_list | read | write and workspace_patch_apply: model-native tree inspection and text edits. */
import {
  WorkspaceFileListInput,
  WorkspaceFileListResult,
  WorkspaceFileReadInput,
  WorkspaceFileReadResult,
  WorkspaceFileWriteInput,
  WorkspaceFileWriteResult,
  WorkspacePatchApplyInput,
  WorkspacePatchApplyResult
} from "../../contract/workspace/files.js"
import type { WorkspaceDiskListResult } from "../../contract/workspace/disk.js"
import { applyPatch, listFiles, readFile, writeFile } from "../../workspace/ops/files.js"
import { hints, operation } from "../operation.js"
import { workspaceIdArg } from "./args.js"


/** A listing for people (of files, or of a stopped disk): one line per entry, every name the guest chose escaped. */
export const formatListing = (what: string) => (r: WorkspaceDiskListResult) =>
  [
    `${what} path: ${JSON.stringify(r.path).slice(1, -1)} (recursive=${r.recursive ? "yes" : "no"})`,
    ...(r.entries.length === 0
      ? [`No ${what.toLowerCase()} entries found.`]
      : r.entries.map((e) =>
        `${JSON.stringify(e.path).slice(1, -1)} [${e.artifact_type}] size=${e.size_bytes}${
          e.link_target !== undefined ? ` -> ${JSON.stringify(e.link_target).slice(1, -1)}` : ""
        }`
      )),
    ...(r.truncated ? [`(listing cut at ${r.count} entries)`] : [])
  ].join("\n") + "\n"

/** A read for people: the bytes on stdout, a `[prefix] key=value` line about them on stderr. */
export const formatRead = (prefix: string) => (r: WorkspaceFileReadResult) => ({
  stdout: r.encoding === "base64" ? Buffer.from(r.content, "base64") : r.content,
  stderr: `[${prefix}] workspace_id=${r.workspace_id} path=${JSON.stringify(r.path)} size_bytes=${r.size_bytes} ` +
    `bytes_read=${r.bytes_read} truncated=${r.truncated} encoding=${r.encoding}\n`
})

export const workspaceFileList = operation({
  tool: "workspace_file_list",
  sdkMethod: "listWorkspaceFiles",
  description: "List a directory in a workspace (default /workspace), or everything below it with recursive: each " +
    "entry's path, artifact_type (file, directory, symlink, other), size_bytes, mode, modified_at and link_target. " +
    "Links are listed, never followed. Runs alongside commands in progress.",
  input: WorkspaceFileListInput,
  output: WorkspaceFileListResult,
  annotations: hints("List workspace files", true, false, true),
  handler: listFiles,
  cli: {
    path: ["workspace", "file", "list"],
    description: "List files under /workspace (or a path under it)",
    args: [workspaceIdArg, { field: "path", name: "PATH", optional: true }],
    human: formatListing("Workspace")
  }
})

export const workspaceFileRead = operation({
  tool: "workspace_file_read",
  sdkMethod: "readWorkspaceFile",
  description: "Read a file in a workspace: up to max_bytes (default 65536, at most 1 MiB) from its start; truncated " +
    "says whether there was more (size_bytes is the whole). content is the text when the bytes are UTF-8 " +
    "(encoding \"utf-8\"), else base64 (encoding \"base64\"). Links inside /workspace are followed; none leads out.",
  input: WorkspaceFileReadInput,
  output: WorkspaceFileReadResult,
  carriesOutput: true,
  annotations: hints("Read a workspace file", true, false, true),
  handler: readFile,
  cli: {
    path: ["workspace", "file", "read"],
    description: "Print a file under /workspace",
    args: [workspaceIdArg, { field: "path", name: "PATH" }],
    human: formatRead("workspace-file-read")
  }
})

export const workspaceFileWrite = operation({
  tool: "workspace_file_write",
  sdkMethod: "writeWorkspaceFile",
  description: "Write a text file in a workspace (UTF-8, at most 1 MiB), replacing it whole and atomically: readers " +
    "see the old content or the new, never a mix. Parent directories are created; a link at the path is replaced, " +
    "never written through.",
  input: WorkspaceFileWriteInput,
  output: WorkspaceFileWriteResult,
  annotations: hints("Write a workspace file", false, false, true),
  handler: writeFile,
  cli: {
    path: ["workspace", "file", "write"],
    description: "Write a text file under /workspace (--text or --text-file)",
    args: [workspaceIdArg, { field: "path", name: "PATH" }],
    fileOptions: { text: "text-file" },
    human: (r) => ({
      stderr: `[workspace-file-write] workspace_id=${r.workspace_id} path=${JSON.stringify(r.path)} bytes_written=${r.bytes_written}\n`
    })
  }
})

export const workspacePatchApply = operation({
  tool: "workspace_patch_apply",
  sdkMethod: "applyWorkspacePatch",
  description: "Apply a unified diff to files in a workspace. Every hunk is checked against the files first and must " +
    "match exactly where it says (no fuzz): if any does not, nothing is changed and the error names the file. " +
    "Files may be added (--- /dev/null), modified or deleted (+++ /dev/null). The result lists each file changed.",
  input: WorkspacePatchApplyInput,
  output: WorkspacePatchApplyResult,
  annotations: hints("Apply a patch in a workspace", false, false, false),
  handler: applyPatch,
  cli: {
    path: ["workspace", "patch", "apply"],
    description: "Apply a unified diff under /workspace (--patch or --patch-file); a conflict changes nothing",
    args: [workspaceIdArg],
    fileOptions: { patch: "patch-file" },
    human: (r) => ({
      stdout: r.files.map((f) => `${f.change} ${JSON.stringify(f.path).slice(1, -1)}\n`).join(""),
      stderr: `[workspace-patch] workspace_id=${r.workspace_id} changed=${r.changed} total=${r.summary.total} ` +
        `added=${r.summary.added} modified=${r.summary.modified} deleted=${r.summary.deleted}\n`
    })
  }
})

