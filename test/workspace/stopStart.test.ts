/**
 * workspace_stop / workspace_start and the disk tools, through the real CLI
 * (each call a new process) on a `debian:12` workspace with a secret and a
 * published port: stop leaves no QEMU, no forwarder and no slot of the
 * active-VM limit; the stopped disk is listed, read and exported offline
 * (names the guest chose with a newline and an escape included, a secret a
 * command wrote hidden); a running workspace's disk is refused; start, or an
 * exec, boots it again with its files and its secrets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { machineKinds } from "../../src/layers/machineKinds.js"
import { countActiveVms } from "../../src/machine/limit.js"
import { cliFor } from "../support/cli.js"
import { eventually, forwarders, makeStateDir, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const outDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-disk-out-"))
const SECRET = "s3cret-value-for-stop-start"
let workspaceId = ""

const { json, pyro, removeAll } = cliFor(stateDir)

const HOSTILE = ["bad\nname", "esc\x1b[31mred"]

beforeAll(async () => {
  const created = await json(
    "workspace", "create", "debian:12", "--network-policy", "egress+published-ports", "--secret", `TOKEN=${SECRET}`
  )
  expect(created.code, created.stderr).toBe(0)
  workspaceId = created.data["workspace_id"]
  const wrote = await json(
    "workspace", "exec", workspaceId, "--secret-env", "TOKEN", "--", "sh", "-c",
    `echo kept > a.txt && printf 1 > "$(printf 'bad\\nname')" && printf 2 > "$(printf 'esc\\033[31mred')" && ` +
      `printf '%s' "$TOKEN" > secret.txt && rm -f /etc/motd`
  )
  expect(wrote.code, wrote.stderr).toBe(0)
  expect(wrote.data["exit_code"]).toBe(0)
}, 600_000)

afterAll(async () => {
  await removeAll(workspaceId)
  Fs.rmSync(outDir, { recursive: true, force: true })
})

describe("workspace stop and start", () => {
  it("refuses a running workspace's disk, then stops it: no QEMU, no forwarder, no slot", async () => {
    const service = await json(
      "workspace", "service", "start", workspaceId, "web", "--ready-tcp", "127.0.0.1:8000", "--publish", "8000",
      "--", "python3", "-m", "http.server", "8000"
    )
    expect(service.code, service.stderr).toBe(0)
    expect(forwarders(workspaceId)).toHaveLength(1)

    const refused = await json("workspace", "disk", "read", workspaceId, "a.txt")
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain("stop it first")
    expect(countActiveVms(stateDir, machineKinds)).toBe(1)

    const stopped = await json("workspace", "stop", workspaceId)
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(stopped.data).toMatchObject({ workspace_id: workspaceId, state: "stopped" })
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(await Effect.runPromise(eventually(() => forwarders(workspaceId).length === 0))).toBe(true)
    expect(countActiveVms(stateDir, machineKinds)).toBe(0)
    // Idempotent.
    const again = await json("workspace", "stop", workspaceId)
    expect(again.data).toMatchObject({ state: "stopped" })
    expect((await json("workspace", "status", workspaceId)).data["state"]).toBe("stopped")
  }, 300_000)

  it("lists the stopped disk's writable layer, the guest's names as they are", async () => {
    const listed = await json("workspace", "disk", "list", workspaceId)
    expect(listed.code, listed.stderr).toBe(0)
    const paths = listed.data["entries"].map((e: Record<string, unknown>) => e["path"])
    expect(paths).toEqual(expect.arrayContaining(["/workspace/a.txt", "/workspace/secret.txt", ...HOSTILE.map((n) => `/workspace/${n}`)]))
    expect(listed.data["entries"].find((e: Record<string, unknown>) => e["path"] === "/workspace/a.txt"))
      .toMatchObject({ artifact_type: "file", size_bytes: 5, mode: "644" })

    // A deletion from the image is its whiteout.
    const etc = await json("workspace", "disk", "list", workspaceId, "/etc")
    expect(etc.data["entries"]).toContainEqual(expect.objectContaining({ path: "/etc/motd", artifact_type: "whiteout" }))

    // Human output escapes what the guest named: no raw newline or escape reaches the terminal.
    const human = await pyro("workspace", "disk", "list", workspaceId)
    expect(human.stdout).toContain("/workspace/bad\\nname")
    expect(human.stdout).toContain("/workspace/esc\\u001b[31mred")
    expect(human.stdout).not.toContain("\x1b")
  })

  it("reads files from the stopped disk, bounded, with a secret hidden", async () => {
    const read = await json("workspace", "disk", "read", workspaceId, "/workspace/a.txt")
    expect(read.data).toMatchObject({ content: "kept\n", encoding: "utf-8", size_bytes: 5, truncated: false })
    const cut = await json("workspace", "disk", "read", workspaceId, "a.txt", "--max-bytes", "2")
    expect(cut.data).toMatchObject({ content: "ke", bytes_read: 2, size_bytes: 5, truncated: true })
    const secret = await json("workspace", "disk", "read", workspaceId, "secret.txt")
    expect(secret.data["content"]).toBe("[REDACTED]")
    const missing = await json("workspace", "disk", "read", workspaceId, "/etc/passwd")
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain("not on the disk")
  })

  it("exports the raw ext4 image, which debugfs reads on the host", async () => {
    const output = Path.join(outDir, "disk.ext4")
    const exported = await json("workspace", "disk", "export", workspaceId, "--output", output)
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.data).toMatchObject({ output_path: output, disk_format: "ext4" })
    expect(Fs.statSync(output).size).toBe(exported.data["bytes_written"])
    const text = execFileSync("debugfs", ["-R", "cat /upper/workspace/a.txt", output], { stdio: ["ignore", "pipe", "ignore"] })
    expect(text.toString()).toBe("kept\n")
    // Never over what is there.
    const again = await json("workspace", "disk", "export", workspaceId, "--output", output)
    expect(again.code).not.toBe(0)
  })

  it("starts again with its files and secrets, and an exec boots a stopped one too", async () => {
    const started = await json("workspace", "start", workspaceId)
    expect(started.code, started.stderr).toBe(0)
    expect(started.data["state"]).toBe("started")
    const back = await json(
      "workspace", "exec", workspaceId, "--", "sh", "-c",
      `cat a.txt && test "$(cat /run/pyro-secrets/TOKEN)" = '${SECRET}' && echo secret-back`
    )
    expect(back.data["stdout"]).toBe("kept\nsecret-back\n")
    // Shells and services ended with the VM.
    expect((await json("workspace", "service", "list", workspaceId)).data["count"]).toBe(0)

    expect((await json("workspace", "stop", workspaceId)).data["state"]).toBe("stopped")
    const viaExec = await json("workspace", "exec", workspaceId, "--", "cat", "a.txt")
    expect(viaExec.data["stdout"]).toBe("kept\n")
    expect((await json("workspace", "status", workspaceId)).data["state"]).toBe("started")
  }, 300_000)
})
