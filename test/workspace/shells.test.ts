/**
 * PTY shells in real workspaces, through the SDK as a package user gets it
 * (dist/sdk.js), and through a second process (the CLI): python3's REPL
 * driven, read plain with an idle wait, interrupted with INT and read again
 * from elsewhere; the 1 MiB ring dropping the oldest output and saying so;
 * the 17th shell refused; a shell that exits on its own; bad ids refused;
 * `pyro workspace shell attach` on a real pseudo-terminal (script's).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFile, execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { promisify } from "node:util"
import { makeStateDir, pyroBin, qemuProcessesUnder, repoRoot } from "../support/vm.js"

const { Pyro } = (await import(Path.join(repoRoot, "dist", "sdk.js"))) as typeof import("../../src/entrypoints/sdk.js")

const stateDir = makeStateDir()
const pyro = new Pyro({ stateDir, maxActiveVms: 3 })
let debian: string
let tiny: string

beforeAll(async () => {
  const [d, t] = await Promise.all([
    pyro.createWorkspace({ environment: "debian:12", mem_mib: 512 }),
    pyro.createWorkspace({ environment: "tiny", mem_mib: 256 })
  ])
  debian = d.workspace_id
  tiny = t.workspace_id
}, 300_000)

afterAll(async () => {
  await pyro.close()
  for (const pid of qemuProcessesUnder(stateDir)) process.kill(pid, "SIGKILL")
  Fs.rmSync(stateDir, { recursive: true, force: true })
})

type Read = Awaited<ReturnType<typeof pyro.readShell>>

/** Reads on from `cursor` (idle-waiting) until the output so far matches `until`; returns all of it. */
const readUntil = async (
  workspace_id: string,
  shell_id: string,
  cursor: number,
  until: (text: string, last: Read) => boolean,
  options: { plain?: boolean; max_chars?: number } = {}
) => {
  let text = ""
  const deadline = Date.now() + 90_000
  for (;;) {
    const r = await pyro.readShell({ workspace_id, shell_id, cursor, wait_for_idle_ms: 300, ...options })
    text += r.output
    cursor = r.next_cursor
    if (until(text, r)) return { text, last: r }
    if (Date.now() > deadline) throw new Error(`gave up waiting; output so far: ${JSON.stringify(text)}`)
  }
}

const cli = async (...args: Array<string>) => {
  const { stdout } = await promisify(execFile)(process.execPath, [pyroBin, ...args], {
    env: { ...process.env, PYRO_STATE_DIR: stateDir }
  })
  return stdout
}

describe("workspace shells", () => {
  it("drive python3's REPL: plain reads with an idle wait, INT, and a second process reading the same output", async () => {
    const opened = await pyro.openShell({ workspace_id: debian })
    expect(opened).toMatchObject({
      workspace_id: debian,
      cwd: "/workspace",
      cols: 120,
      rows: 30,
      state: "running",
      ended_at: null,
      exit_code: null,
      execution_mode: "guest_virtio_serial"
    })
    const shell_id = opened.shell_id
    expect(shell_id).toMatch(/^[0-9a-f]{12}$/)

    let cursor = (await readUntil(debian, shell_id, 0, (t) => /[#$] $/.test(t.trimEnd() + " "))).last.next_cursor
    expect((await pyro.writeShell({ workspace_id: debian, shell_id, input: "python3" })).input_length).toBe(8)
    let step = await readUntil(debian, shell_id, cursor, (t) => t.includes(">>>"), { plain: true })
    expect(step.text).toContain("Python 3")
    // Plain output is what the screen shows: no escape sequences left.
    expect(step.text).not.toMatch(/\x1b/)
    cursor = step.last.next_cursor

    await pyro.writeShell({ workspace_id: debian, shell_id, input: "1+1" })
    step = await readUntil(debian, shell_id, cursor, (t) => /^2$/m.test(t) && t.trimEnd().endsWith(">>>"), { plain: true })
    expect(step.text.split("\n")).toContain("2")
    cursor = step.last.next_cursor

    await pyro.writeShell({ workspace_id: debian, shell_id, input: "import time; time.sleep(120)" })
    await readUntil(debian, shell_id, cursor, (t) => t.includes("time.sleep(120)"))
    const signalled = await pyro.signalShell({ workspace_id: debian, shell_id, signal_name: "INT" })
    expect(signalled).toMatchObject({ signal: "INT", state: "running" })
    step = await readUntil(debian, shell_id, cursor, (t) => t.includes("KeyboardInterrupt") && t.trimEnd().endsWith(">>>"), { plain: true })

    // Another process, from the start: the same bytes this one reads from there.
    const mine = await pyro.readShell({ workspace_id: debian, shell_id, cursor: 0, max_chars: 1_000_000 })
    const theirs = JSON.parse(await cli("workspace", "shell", "read", debian, shell_id, "--cursor", "0", "--max-chars", "1000000", "--json"))
    expect(theirs).toMatchObject({ shell_id, cursor: 0, output: mine.output, next_cursor: mine.next_cursor, truncated: false })
    expect(mine.output).toContain("KeyboardInterrupt")
    const human = await cli("workspace", "shell", "read", debian, shell_id, "--plain")
    expect(human).toContain(">>> 1+1\n2\n")

    const closed = await pyro.closeShell({ workspace_id: debian, shell_id })
    expect(closed).toMatchObject({ shell_id, state: "stopped", closed: true })
    expect(closed.ended_at).not.toBeNull()
    const gone = await pyro.readShell({ workspace_id: debian, shell_id }).catch((e) => e)
    expect(gone.code).toBe("workspace_shell_error")
  }, 300_000)

  it("keeps the last 1 MiB of output and says how much was dropped", async () => {
    const { shell_id } = await pyro.openShell({ workspace_id: tiny, cols: 80, rows: 24 })
    // The command line echoes `do""ne`; only the command's own output says `done`.
    await pyro.writeShell({ workspace_id: tiny, shell_id, input: `head -c 1300000 /dev/zero | tr '\\0' a; echo; echo do""ne` })
    const seen = await readUntil(tiny, shell_id, 0, (t) => /^done\r?$/m.test(t), { max_chars: 1_048_576 })
    expect(seen.last.next_cursor).toBeGreaterThan(1_300_000)
    const fromStart = await pyro.readShell({ workspace_id: tiny, shell_id, cursor: 0, max_chars: 10 })
    expect(fromStart.dropped_bytes).toBeGreaterThan(0)
    expect(fromStart.cursor).toBe(fromStart.dropped_bytes)
    expect(fromStart).toMatchObject({ output: "aaaaaaaaaa", next_cursor: fromStart.cursor + 10, truncated: true })
    await pyro.closeShell({ workspace_id: tiny, shell_id })
  }, 300_000)

  it("refuses a 17th shell, and a shell that exits on its own stays readable, stopped, with its exit code", async () => {
    const ids: Array<string> = []
    for (let i = 0; i < 16; i++) ids.push((await pyro.openShell({ workspace_id: tiny })).shell_id)
    const refused = await pyro.openShell({ workspace_id: tiny }).catch((e) => e)
    expect(refused.code).toBe("workspace_shell_error")
    expect(refused.message).toContain("16 shells")

    const last = ids.pop()!
    await pyro.writeShell({ workspace_id: tiny, shell_id: last, input: "echo bye; exit 7" })
    const { last: stopped, text } = await readUntil(tiny, last, 0, (_, r) => r.state === "stopped")
    expect(stopped).toMatchObject({ state: "stopped", exit_code: 7 })
    expect(stopped.ended_at).not.toBeNull()
    expect(text).toContain("bye")
    const written = await pyro.writeShell({ workspace_id: tiny, shell_id: last, input: "echo again" }).catch((e) => e)
    expect(written.code).toBe("workspace_shell_error")
    expect((await pyro.closeShell({ workspace_id: tiny, shell_id: last })).exit_code).toBe(7)

    for (const shell_id of ids) expect((await pyro.closeShell({ workspace_id: tiny, shell_id })).state).toBe("stopped")
  }, 300_000)

  it("refuses a malformed shell id as invalid input and an unknown one as not found", async () => {
    const bad = await pyro.readShell({ workspace_id: tiny, shell_id: "../etc" }).catch((e) => e)
    expect(bad.code).toBe("invalid_input")
    const unknown = await pyro.signalShell({ workspace_id: tiny, shell_id: "0123456789ab" }).catch((e) => e)
    expect(unknown.code).toBe("workspace_shell_error")
    expect(unknown.message).toContain("no such shell")
  }, 120_000)

  it("attach: keys to the shell, its output and a resize back, Ctrl-] detaches and leaves it running", async () => {
    // `pyro workspace shell attach` on a pseudo-terminal of 100x40 (script's), resized to 90x33 half-way.
    const script = spawn("script", [
      "-q",
      "-e",
      "-c",
      `stty rows 40 cols 100; exec ${process.execPath} ${pyroBin} workspace shell attach ${tiny}`,
      "/dev/null"
    ], { env: { ...process.env, PYRO_STATE_DIR: stateDir }, stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    script.stdout.on("data", (b: Buffer) => (out += b.toString()))
    script.stderr.on("data", (b: Buffer) => (out += b.toString()))
    const exited = new Promise<number | null>((resolve) => script.on("exit", resolve))
    const until = async (marker: string) => {
      const deadline = Date.now() + 60_000
      while (!out.includes(marker)) {
        if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(marker)} in ${JSON.stringify(out)}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    await until("Ctrl-]")
    await until("# ")
    script.stdin.write("echo hel''lo; stty size\r")
    await until("40 100")
    // The attaching process (script's child, exec'd into node) and its terminal.
    const attach = Fs.readFileSync(`/proc/${script.pid}/task/${script.pid}/children`, "utf8").trim().split(" ")[0]!
    const tty = Fs.readlinkSync(`/proc/${attach}/fd/0`)
    execFileSync("stty", ["-F", tty, "rows", "33", "cols", "90"]) // the kernel sends it SIGWINCH
    await new Promise((r) => setTimeout(r, 1000))
    script.stdin.write("stty size\r")
    await until("33 90")
    script.stdin.write("\x1d")
    await until("keeps running")
    expect(await exited).toBe(0)
    expect(out).toContain("hello")
    expect(out).toMatch(/detached; the shell keeps running: pyro workspace shell attach [0-9a-f]{12} [0-9a-f]{12}/)
    const shell_id = /shell_id=([0-9a-f]{12})/.exec(out)![1]!
    expect((await pyro.readShell({ workspace_id: tiny, shell_id })).state).toBe("running")
    expect((await pyro.closeShell({ workspace_id: tiny, shell_id })).state).toBe("stopped")
  }, 240_000)
})
