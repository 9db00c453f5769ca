/** workspace_disk_list | read | export: a stopped workspace's disk, read offline. */
import {
  WorkspaceDiskExportInput,
  WorkspaceDiskExportResult,
  WorkspaceDiskListInput,
  WorkspaceDiskListResult,
  WorkspaceDiskReadInput,
  WorkspaceDiskReadResult
} from "../../contract/workspace/disk.js"
import { exportDisk, listDisk, readDisk } from "../../workspace/ops/disk.js"
import { hints, operation } from "../operation.js"
import { workspaceIdArg } from "./args.js"
import { formatListing, formatRead } from "./files.js"

/** What the disk holds, said once for every disk tool. */
const ON_DISK = "Needs the workspace stopped (workspace_stop). Its disk is its writable layer: every file created or " +
  "changed since the environment's image (all of /workspace), not the image's own files; a file deleted from the " +
  "image is a \"whiteout\" entry."

export const workspaceDiskList = operation({
  tool: "workspace_disk_list",
  sdkMethod: "listWorkspaceDisk",
  description: "List a directory on a stopped workspace's disk (default /workspace; any absolute guest path), or " +
    "everything below it with recursive: each entry's path, artifact_type (file, directory, symlink, other, " +
    `whiteout), size_bytes, mode, modified_at and link_target. Read offline; links are never followed. ${ON_DISK}`,
  input: WorkspaceDiskListInput,
  output: WorkspaceDiskListResult,
  annotations: hints("List a stopped workspace's disk", true, false, true),
  handler: listDisk,
  cli: {
    path: ["workspace", "disk", "list"],
    description: "List files on a stopped workspace's disk",
    args: [workspaceIdArg, { field: "path", name: "PATH", optional: true }],
    human: formatListing("Disk")
  }
})

export const workspaceDiskRead = operation({
  tool: "workspace_disk_read",
  sdkMethod: "readWorkspaceDisk",
  description: "Read a regular file on a stopped workspace's disk: up to max_bytes (default 65536, at most 1 MiB) from " +
    "its start; truncated says whether there was more (size_bytes is the whole). content is the text when the bytes " +
    `are UTF-8 (encoding "utf-8"), else base64 (encoding "base64"). Links are not followed. ${ON_DISK}`,
  input: WorkspaceDiskReadInput,
  output: WorkspaceDiskReadResult,
  carriesOutput: true,
  annotations: hints("Read a file on a stopped workspace's disk", true, false, true),
  handler: readDisk,
  cli: {
    path: ["workspace", "disk", "read"],
    description: "Print a file from a stopped workspace's disk",
    args: [workspaceIdArg, { field: "path", name: "PATH" }],
    human: formatRead("workspace-disk-read")
  }
})

export const workspaceDiskExport = operation({
  tool: "workspace_disk_export",
  sdkMethod: "exportWorkspaceDisk",
  description: "Copy a stopped workspace's disk to the host at output_path (which must not exist) as a raw ext4 image, " +
    "sparse: debugfs or e2fsck read it, or mount it read-only somewhere you trust; it is the guest's, unchecked. " +
    ON_DISK,
  input: WorkspaceDiskExportInput,
  output: WorkspaceDiskExportResult,
  annotations: hints("Export a stopped workspace's disk", false, false, false),
  handler: exportDisk,
  cli: {
    path: ["workspace", "disk", "export"],
    description: "Copy a stopped workspace's raw ext4 disk image to a host path",
    args: [workspaceIdArg],
    optionNames: { output_path: "output" },
    optionHelp: { output_path: "Host path to write the image to (must not exist)" },
    human: (r) => ({
      stderr: `[workspace-disk-export] workspace_id=${r.workspace_id} output_path=${JSON.stringify(r.output_path)} ` +
        `disk_format=${r.disk_format} bytes_written=${r.bytes_written}\n`
    })
  }
})
