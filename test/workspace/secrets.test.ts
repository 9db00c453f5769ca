/**
 * Workspace secrets through a real MCP client and the CLI: a literal and a
 * file secret reach a command as environment variables and as files under
 * /run/pyro-secrets, and their values never come back: not in results (even
 * printed in two pieces with a pause between), the journal, streamed CLI
 * output or status, and nowhere on the host's disk but secrets.json. A VM
 * booted again gets them back.
 */
import * as Effect from "effect/Effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { connectMcp, type McpTest, tearDownMcp, type ToolResult } from "../support/mcp.js"
import { eventually, makeStateDir, pyroBin } from "../support/vm.js"

const stateDir = makeStateDir()
const work = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-secrets-"))
const LITERAL = "sk-literal-4f1d9a77c2"
const FROM_FILE = "file-token-88e2b0c1"
const tokenFile = Path.join(work, "token.txt")
const outside = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-secrets-outside-"))

let mcp: McpTest | undefined
let workspaceId: string

const call = (name: string, args: Record<string, unknown> = {}): Promise<ToolResult> => mcp!.call(name, args)

const env = { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>
const pyro = (...args: Array<string>) => spawnSync(process.execPath, [pyroBin, ...args], { env, encoding: "utf8", timeout: 180_000 })

/**
 * Every file under `dir` whose bytes hold `needle`. Disk images are sparse
 * (8 GiB, mostly holes): GNU tar reads only their data (SEEK_HOLE), grep
 * searches that.
 */
const filesHolding = (dir: string, needle: string): Array<string> => {
  const out: Array<string> = []
  const holds = (path: string) =>
    Fs.statSync(path).size < 64 * 1024 * 1024
      ? Fs.readFileSync(path).includes(needle)
      : spawnSync("sh", ["-c", 'tar -cSf - "$1" 2>/dev/null | grep -qaF -e "$2"', "sh", path, needle]).status === 0
  const walk = (d: string) => {
    for (const entry of Fs.readdirSync(d, { withFileTypes: true })) {
      const p = Path.join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.isFile() && holds(p)) out.push(p)
    }
  }
  walk(dir)
  return out
}

beforeAll(async () => {
  Fs.writeFileSync(tokenFile, `${FROM_FILE}\n`)
  Fs.writeFileSync(Path.join(outside, "token.txt"), "outside-the-roots\n")
  mcp = await connectMcp({ name: "pyro-secrets-test", stateDir, profile: "workspace-full", env: { PYRO_IMPORT_ROOTS: work } })
}, 60_000)

afterAll(() => tearDownMcp(mcp, stateDir, work, outside))

describe("workspace secrets", () => {
  it("refuses bad secrets before anything boots", async () => {
    const outsideRoots = await call("workspace_create", {
      environment: "tiny",
      secrets: [{ name: "X_TOKEN", file_path: Path.join(outside, "token.txt") }]
    })
    expect(outsideRoots.isError).toBe(true)
    expect(outsideRoots.text).toContain("invalid_input")
    expect(outsideRoots.text).toContain("file_path")
    const short = await call("workspace_create", { environment: "tiny", secrets: [{ name: "A", value: "abc" }] })
    expect(short.isError).toBe(true)
    expect(short.text).toContain("at least 4 characters")
    const twice = await call("workspace_create", {
      environment: "tiny",
      secrets: [{ name: "A", value: "abcd" }, { name: "A", value: "efgh" }]
    })
    expect(twice.text).toContain("twice")
    const workspaces = Path.join(stateDir, "workspaces")
    expect(Fs.existsSync(workspaces) ? Fs.readdirSync(workspaces) : []).toEqual([])
  })

  it("gives commands the secrets and never shows their values", async () => {
    const created = await call("workspace_create", {
      environment: "tiny",
      mem_mib: 256,
      secrets: [{ name: "API_TOKEN", value: LITERAL }, { name: "FILE_TOKEN", file_path: tokenFile }]
    })
    expect(created.isError, created.text).toBe(false)
    workspaceId = created.data["workspace_id"]
    expect(created.data["secrets"]).toEqual([
      { name: "API_TOKEN", source_kind: "literal" },
      { name: "FILE_TOKEN", source_kind: "file" }
    ])
    expect(created.text).not.toContain(LITERAL)

    // The value, whole, split in two writes a moment apart, and from its file.
    const script = [
      "echo \"env=$TOKEN\"",
      "printf 'split=%s' \"${TOKEN%??????????}\"; sleep 0.5; printf '%s\\n' \"${TOKEN#${TOKEN%??????????}}\"",
      "echo \"file=$(cat /run/pyro-secrets/FILE_TOKEN)\" >&2",
      "stat -c '%a %s' /run/pyro-secrets/API_TOKEN",
      "echo \"len=${#TOKEN}\""
    ].join("; ")
    const ran = await call("workspace_exec", { workspace_id: workspaceId, command: script, secret_env: { API_TOKEN: "TOKEN" } })
    expect(ran.isError, ran.text).toBe(false)
    expect(ran.data["stdout"]).toBe(`env=[REDACTED]\nsplit=[REDACTED]\n600 ${LITERAL.length}\nlen=${LITERAL.length}\n`)
    expect(ran.data["stderr"]).toBe("file=[REDACTED]\n")

    const unknown = await call("workspace_exec", { workspace_id: workspaceId, command: "true", secret_env: { NOPE: "X" } })
    expect(unknown.isError).toBe(true)
    expect(unknown.text).toContain("no secret named NOPE")

    // Streamed by the CLI as it arrives, the split value is caught too.
    const cli = pyro("workspace", "exec", workspaceId, "--secret-env", "API_TOKEN", "--", "sh", "-c",
      "printf '%s' \"${API_TOKEN%??????????}\"; sleep 0.5; printf '%s\\n' \"${API_TOKEN#${API_TOKEN%??????????}}\"")
    expect(cli.status, cli.stderr).toBe(0)
    expect(cli.stdout).toBe("[REDACTED]\n")

    const logs = await call("workspace_logs", { workspace_id: workspaceId })
    expect(logs.text).not.toContain(LITERAL)
    expect(logs.text).not.toContain(FROM_FILE)
    expect(logs.text).toContain("env=[REDACTED]")
    const status = pyro("workspace", "status", workspaceId)
    expect(status.stdout).toContain("Secrets: API_TOKEN (literal), FILE_TOKEN (file)")

    // On the host's disk, the values live in secrets.json only (0600); the guest's disk image holds neither.
    const home = Path.join(stateDir, "workspaces", workspaceId, "secrets.json")
    expect(Fs.statSync(home).mode & 0o777).toBe(0o600)
    expect(filesHolding(stateDir, LITERAL)).toEqual([home])
    expect(filesHolding(stateDir, FROM_FILE)).toEqual([home])

    // A value a command writes into /workspace is hidden from file reads and diffs too.
    await call("workspace_exec", { workspace_id: workspaceId, command: "echo \"key: $T\" > leak.txt", secret_env: { API_TOKEN: "T" } })
    const read = await call("workspace_file_read", { workspace_id: workspaceId, path: "leak.txt" })
    expect(read.data["content"]).toBe("key: [REDACTED]\n")
    const diff = await call("workspace_diff", { workspace_id: workspaceId })
    expect(diff.data["patch"]).toContain("+key: [REDACTED]")
    expect(diff.text).not.toContain(LITERAL)
  }, 300_000)

  it("gives a service its secrets and redacts its logs", async () => {
    const started = await call("service_start", {
      workspace_id: workspaceId,
      service_name: "leaky",
      command: "echo \"token=$T\"; echo \"again $T\" >&2; exec sleep 300",
      secret_env: { API_TOKEN: "T" }
    })
    expect(started.isError, started.text).toBe(false)
    const logs = await call("service_logs", { workspace_id: workspaceId, service_name: "leaky", all: true })
    expect(logs.data["stdout"]).toBe("token=[REDACTED]\n")
    expect(logs.data["stderr"]).toBe("again [REDACTED]\n")
    const refused = await call("service_start", {
      workspace_id: workspaceId,
      service_name: "other",
      command: "true",
      secret_env: { MISSING: "X" }
    })
    expect(refused.text).toContain("no secret named MISSING")
    await call("service_stop", { workspace_id: workspaceId, service_name: "leaky" })
  }, 300_000)

  it("gives a shell its secrets and never shows them, however its output is read", async () => {
    const opened = await call("shell_open", { workspace_id: workspaceId, secret_env: { API_TOKEN: "T" } })
    expect(opened.isError, opened.text).toBe(false)
    const shell = opened.data["shell_id"]
    await call("shell_write", { workspace_id: workspaceId, shell_id: shell, input: "echo \"v=$T.\"; echo done" })
    // Read whole (waiting until the command has run), then again three characters at a time from the start.
    let whole = ""
    for (let polls = 0; polls < 30 && !/\ndone/.test(whole); polls++) {
      const r = await call("shell_read", { workspace_id: workspaceId, shell_id: shell, wait_for_idle_ms: 500 })
      whole = String(r.data["output"])
    }
    expect(whole).toContain("v=[REDACTED].")
    let cursor = 0
    let pieces = ""
    for (let reads = 0; reads < 400; reads++) {
      const r = await call("shell_read", { workspace_id: workspaceId, shell_id: shell, cursor, max_chars: 3 })
      expect(r.text).not.toContain(LITERAL.slice(0, 8))
      pieces += r.data["output"]
      if (r.data["next_cursor"] === cursor && !r.data["truncated"]) break
      cursor = r.data["next_cursor"]
    }
    expect(pieces).toContain("v=[REDACTED].")
    // From a cursor inside the value, the rest of it is hidden too.
    const raw = await call("shell_read", { workspace_id: workspaceId, shell_id: shell, cursor: 0, max_chars: 65536 })
    const at = Buffer.from(String(raw.data["output"])).indexOf("v=[REDACTED]")
    const inside = await call("shell_read", { workspace_id: workspaceId, shell_id: shell, cursor: at + 2 + 5 })
    expect(inside.data["output"]).toMatch(/^\[REDACTED\]\./)
    await call("shell_close", { workspace_id: workspaceId, shell_id: shell })
  }, 300_000)

  it("puts the secrets back when the VM is booted again", async () => {
    const record = JSON.parse(Fs.readFileSync(Path.join(stateDir, "workspaces", workspaceId, "workspace.json"), "utf8"))
    process.kill(record.vmm.pid, "SIGKILL")
    // Once it is gone (the server's connection to it then closes), the next call boots it again.
    expect(await Effect.runPromise(eventually(() => !Fs.existsSync(`/proc/${record.vmm.pid}/stat`)))).toBe(true)
    await new Promise((r) => setTimeout(r, 300))
    const again = await call("workspace_exec", {
      workspace_id: workspaceId,
      command: "wc -c < /run/pyro-secrets/FILE_TOKEN; echo $FILE_TOKEN",
      secret_env: { FILE_TOKEN: "FILE_TOKEN" }
    })
    expect(again.isError, again.text).toBe(false)
    expect(again.data["stdout"]).toBe(`${FROM_FILE.length}\n[REDACTED]\n`)
    execFileSync(process.execPath, [pyroBin, "workspace", "delete", workspaceId], { env })
  }, 300_000)
})
