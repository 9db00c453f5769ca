/** The real CLI as tests run it: every call a new `pyro` process on one state directory. */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import { forwarders, pyroBin, qemuProcessesUnder } from "./vm.js"

export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Any command to its end, with what it printed. */
export const runProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: NodeJS.ProcessEnv; readonly cwd?: string } = {}
) =>
  new Promise<Ran>((resolve) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", (e) => resolve({ code: null, stdout, stderr: stderr + e.message }))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

export const cliFor = (stateDir: string) => {
  const pyro = (...args: Array<string>) =>
    runProcess(process.execPath, [pyroBin, ...args], { env: { ...process.env, PYRO_STATE_DIR: stateDir } })

  /** With --json, which goes before the command's `--` (after it, it would be the command's); `data` when it succeeded. */
  const json = async (...args: Array<string>) => {
    const dashes = args.indexOf("--")
    const r = await pyro(...(dashes < 0 ? [...args, "--json"] : [...args.slice(0, dashes), "--json", ...args.slice(dashes)]))
    return { ...r, data: r.code === 0 ? JSON.parse(r.stdout) as Record<string, any> : {} }
  }
  /** After a file's tests: the workspace deleted, anything of it still running killed, the state directory gone. */
  const removeAll = async (workspaceId: string) => {
    if (workspaceId) await pyro("workspace", "delete", workspaceId)
    for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
    if (workspaceId) for (const pid of forwarders(workspaceId)) process.kill(Number(pid), "SIGKILL")
    Fs.rmSync(stateDir, { recursive: true, force: true })
  }
  return { pyro, json, removeAll }
}
