/** shell_open | read | write | signal | close: interactive shells a workspace keeps for any client to come back to. */
import {
  ShellCloseInput,
  ShellCloseResult,
  ShellOpenInput,
  ShellReadInput,
  ShellReadResult,
  ShellResult,
  ShellSignalInput,
  ShellSignalResult,
  ShellWriteInput,
  ShellWriteResult
} from "../../contract/workspace/shells.js"
import { closeShell, openShell, readShell, signalShell, writeShell } from "../../workspace/ops/shells.js"
import { hints, operation } from "../operation.js"
import { secretEnvOptions, workspaceIdArg } from "./args.js"

const shellIdArg = { field: "shell_id", name: "SHELL_ID" } as const

/** `[workspace-shell-open] workspace_id=… shell_id=… state=… cwd=… cols=… rows=… execution_mode=…` and extras. */
const summary = (prefix: string, r: ShellResult, extra: Readonly<Record<string, unknown>> = {}) =>
  `[workspace-shell-${prefix}] workspace_id=${r.workspace_id} shell_id=${r.shell_id} state=${r.state} ` +
  `cwd=${JSON.stringify(r.cwd)} cols=${r.cols} rows=${r.rows}` +
  Object.entries(extra).map(([k, v]) => ` ${k}=${v}`).join("") +
  (r.exit_code !== null ? ` exit_code=${r.exit_code}` : "") +
  ` execution_mode=${r.execution_mode}\n`

export const shellOpen = operation({
  tool: "shell_open",
  sdkMethod: "openShell",
  description: "Open an interactive shell (bash, or sh where there is no bash) on a terminal in a workspace, in cwd " +
    "(default /workspace), cols x rows (default 120 x 30). The workspace keeps it, and all it writes, for any client " +
    "to use by its shell_id until shell_close, workspace_delete or its own exit (then state is stopped and its output " +
    "stays readable). At most 16 at once. Use workspace_exec for one-shot commands.",
  input: ShellOpenInput,
  output: ShellResult,
  annotations: hints("Open a workspace shell", false, false, false),
  handler: openShell,
  cli: {
    path: ["workspace", "shell", "open"],
    description: "Open an interactive shell in a workspace (workspace exec is for one-shot commands)",
    args: [workspaceIdArg],
    humanFlags: { "id-only": "Print only the new shell's id" },
    repeatedOptions: { secret_env: secretEnvOptions },
    human: (r, flags) => (flags.has("id-only") ? `${r.shell_id}\n` : { stderr: summary("open", r) })
  }
})

export const shellRead = operation({
  tool: "shell_read",
  sdkMethod: "readShell",
  description: "Read merged PTY output from a workspace shell. From cursor (a byte offset into the shell's raw output; " +
    "pass the last read's next_cursor to read on), at most max_chars characters; truncated says more output waits. " +
    "The workspace keeps the last 1 MiB: a cursor older than that reads from the oldest byte kept (cursor says where, " +
    "dropped_bytes how much was lost). plain renders what a terminal would show (no colours or control sequences); " +
    "wait_for_idle_ms waits until the shell has been quiet that long (300 suits a prompt).",
  input: ShellReadInput,
  output: ShellReadResult,
  carriesOutput: true,
  annotations: hints("Read a workspace shell", true, false, true),
  handler: readShell,
  cli: {
    path: ["workspace", "shell", "read"],
    description: "Print a shell's output (to stdout) from a cursor",
    args: [workspaceIdArg, shellIdArg],
    human: (r) => ({
      stdout: r.output,
      stderr: `[workspace-shell-read] workspace_id=${r.workspace_id} shell_id=${r.shell_id} state=${r.state} ` +
        `cursor=${r.cursor} next_cursor=${r.next_cursor} truncated=${r.truncated}` +
        (r.dropped_bytes > 0 ? ` dropped_bytes=${r.dropped_bytes}` : "") + "\n"
    })
  }
})

export const shellWrite = operation({
  tool: "shell_write",
  sdkMethod: "writeShell",
  description: "Type input into a workspace shell's terminal, then a newline unless append_newline is false (send " +
    "\"\\u0003\" without a newline for Ctrl-C, or use shell_signal). At most 64 KiB; read the result with shell_read.",
  input: ShellWriteInput,
  output: ShellWriteResult,
  annotations: hints("Write to a workspace shell", false, false, false),
  handler: writeShell,
  cli: {
    path: ["workspace", "shell", "write"],
    description: "Type --input into a shell (and Enter, unless --no-newline)",
    args: [workspaceIdArg, shellIdArg],
    offFlags: { append_newline: "no-newline" },
    optionHelp: { append_newline: "Do not press Enter after the input" },
    human: (r) => ({ stderr: summary("write", r, { input_length: r.input_length }) })
  }
})

export const shellSignal = operation({
  tool: "shell_signal",
  sdkMethod: "signalShell",
  description: "Send a signal to a workspace shell: INT (the default) to the job in its foreground, as Ctrl-C would; " +
    "HUP, TERM or KILL to that job and the shell itself.",
  input: ShellSignalInput,
  output: ShellSignalResult,
  annotations: hints("Signal a workspace shell", false, true, false),
  handler: signalShell,
  cli: {
    path: ["workspace", "shell", "signal"],
    description: "Send a signal (--signal HUP|INT|TERM|KILL, default INT) to a shell",
    args: [workspaceIdArg, shellIdArg],
    optionNames: { signal_name: "signal" },
    human: (r) => ({ stderr: summary("signal", r, { signal: r.signal }) })
  }
})

export const shellClose = operation({
  tool: "shell_close",
  sdkMethod: "closeShell",
  description: "Close a workspace shell: it gets HUP, and a second later everything it started is killed. Returns " +
    "its final state; its output is gone after this.",
  input: ShellCloseInput,
  output: ShellCloseResult,
  annotations: hints("Close a workspace shell", false, true, false),
  handler: closeShell,
  cli: {
    path: ["workspace", "shell", "close"],
    description: "Close a shell and everything it started",
    args: [workspaceIdArg, shellIdArg],
    human: (r) => ({ stderr: summary("close", r) })
  }
})
