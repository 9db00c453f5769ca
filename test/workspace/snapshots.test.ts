/**
 * Snapshots and reset through a real MCP client (and the CLI once), on one
 * tiny workspace seeded with app.txt = "v1" and a literal secret: a snapshot
 * of a running workspace (frozen) and of a stopped one, reset to a named
 * snapshot and to the baseline (files back, processes, shells and the
 * journal gone; id, snapshots, secrets and the diff baseline kept), the
 * names refused, and a deleted snapshot's layer freed. No QEMU is left.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { cliFor } from "../support/cli.js"
import { connectMcp, type McpTest, tearDownMcp, type ToolResult } from "../support/mcp.js"
import { makeStateDir, qemuProcessesUnder } from "../support/vm.js"

const stateDir = makeStateDir()
const seed = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-snapshots-"))
const SECRET = "sk-snapshot-7c41e0d9b3"

let mcp: McpTest | undefined
let workspaceId = ""
const { json } = cliFor(stateDir)

const call = (name: string, args: Record<string, unknown> = {}): Promise<ToolResult> => mcp!.call(name, args)
const ok = async (name: string, args: Record<string, unknown> = {}) => {
  const r = await call(name, { workspace_id: workspaceId, ...args })
  expect(r.isError, `${name}: ${r.text}`).toBe(false)
  return r.data
}
/** The call fails, and its `code: message` text holds every one of `needles`. */
const refused = async (name: string, args: Record<string, unknown>, ...needles: Array<string>) => {
  const r = await call(name, { workspace_id: workspaceId, ...args })
  expect(r.isError, `${name} should fail`).toBe(true)
  for (const needle of needles) expect(r.text).toContain(needle)
}
/** A shell command's stdout (it must exit 0). */
const sh = async (command: string, args: Record<string, unknown> = {}) => {
  const r = await ok("workspace_exec", { command, ...args })
  expect(r["exit_code"], r["stderr"]).toBe(0)
  return String(r["stdout"])
}
const files = () => sh("cat app.txt; test -e new.txt && echo new-present || echo new-absent")
const workspaceDir = () => Path.join(stateDir, "workspaces", workspaceId)
const layerFiles = () => Fs.readdirSync(workspaceDir()).filter((f) => /^layer-.*\.qcow2$/.test(f))
const layerCount = () => layerFiles().length

/**
 * A qcow2 header (version 2, 64 KiB clusters, 1 GiB) naming a backing file
 * that does not exist: what a guest would write at the start of its raw disk
 * to make a host that probes formats open a file of its choosing. ext4 leaves
 * the first 1024 bytes of its device unused, so the filesystem stays whole.
 */
const FAKE_BACKING = "/nonexistent/pyro-probed-this"
const fakeQcow2Header = () => {
  const header = Buffer.alloc(72 + FAKE_BACKING.length)
  header.write("QFI\xfb", 0, "latin1")
  header.writeUInt32BE(2, 4) // version
  header.writeBigUInt64BE(72n, 8) // backing file name offset
  header.writeUInt32BE(FAKE_BACKING.length, 16)
  header.writeUInt32BE(16, 20) // cluster bits
  header.writeBigUInt64BE(1n << 30n, 24) // virtual size
  header.write(FAKE_BACKING, 72, "latin1")
  return [...header].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("")
}
/** The guest's scratch block device, found by its virtio serial as the agent finds it. */
const SCRATCH_DEVICE = "$(for d in /sys/block/vd*; do [ \"$(cat $d/serial 2>/dev/null)\" = pyro-scratch ] && echo /dev/${d##*/}; done)"

beforeAll(async () => {
  Fs.writeFileSync(Path.join(seed, "app.txt"), "v1\n")
  mcp = await connectMcp({ name: "pyro-snapshots-test", stateDir, profile: "workspace-full", env: { PYRO_IMPORT_ROOTS: seed } })
  const created = await call("workspace_create", {
    environment: "tiny",
    mem_mib: 256,
    seed_path: seed,
    secrets: [{ name: "API_TOKEN", value: SECRET }]
  })
  expect(created.isError, created.text).toBe(false)
  workspaceId = created.data["workspace_id"]
}, 300_000)

afterAll(async () => {
  if (workspaceId) await call("workspace_delete", { workspace_id: workspaceId }).catch(() => undefined)
  await tearDownMcp(mcp, stateDir, seed)
})

describe("workspace snapshots and reset", () => {
  it("starts with the baseline and no resets", async () => {
    const status = await ok("workspace_status")
    expect(status).toMatchObject({ snapshots: ["baseline"], reset_count: 0, last_reset_at: null, forked_from: null })
    const listed = await ok("snapshot_list")
    expect(listed["count"]).toBe(1)
    expect(listed["snapshots"][0]).toMatchObject({ snapshot_name: "baseline", kind: "baseline" })
    expect(listed["snapshots"][0]).not.toHaveProperty("layer")
  }, 60_000)

  it("snapshots a running workspace and resets to it: files back, processes, shells and journal gone", async () => {
    await sh("echo broken > app.txt && echo extra > new.txt")
    await ok("service_start", { service_name: "sleeper", command: "sleep 300" })
    const shell = (await ok("shell_open"))["shell_id"]

    const taken = await ok("snapshot_create", { snapshot_name: "broken" })
    expect(taken["frozen"]).toBe(true)
    expect(taken["snapshot"]).toMatchObject({ snapshot_name: "broken", kind: "named" })
    expect(taken["snapshot"]["bytes_written"]).toBeGreaterThan(0)

    await sh("echo fixed > app.txt && rm new.txt")
    expect(await files()).toBe("fixed\nnew-absent\n")

    const reset = await ok("workspace_reset", { snapshot: "broken" })
    expect(reset["workspace_id"]).toBe(workspaceId)
    expect(reset["reset_count"]).toBe(1)
    expect(reset["last_reset_at"]).toEqual(expect.any(String))
    expect(await files()).toBe("broken\nnew-present\n")
    expect((await ok("service_list"))["count"]).toBe(0)
    await refused("shell_read", { shell_id: shell }, "workspace_shell_error")
    // The journal was cleared by the reset; files() above is the only command since.
    const logs = await ok("workspace_logs")
    expect(logs["count"]).toBe(1)
    expect((await ok("workspace_status"))["command_count"]).toBe(1)

    // The secret is put back with the new VM.
    expect(await sh("echo \"${#T} $T\"", { secret_env: { API_TOKEN: "T" } })).toBe(`${SECRET.length} [REDACTED]\n`)
    // The diff still compares against create's baseline.
    const diff = await ok("workspace_diff")
    expect(diff["changed"]).toBe(true)
    expect(diff["entries"]).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: "/workspace/app.txt", change: "modified" }),
      expect.objectContaining({ path: "/workspace/new.txt", change: "added" })
    ]))
  }, 300_000)

  it("resets to the baseline by default, keeping the snapshots", async () => {
    const reset = await ok("workspace_reset")
    expect(reset).toMatchObject({ reset_count: 2, snapshots: ["baseline", "broken"] })
    expect(await files()).toBe("v1\nnew-absent\n")
  }, 300_000)

  it("refuses the baseline's name, a duplicate, and deleting the baseline", async () => {
    await refused("snapshot_create", { snapshot_name: "baseline" }, "invalid_input", "choose another name")
    await refused("snapshot_create", { snapshot_name: "broken" }, "workspace_snapshot_error", "a snapshot of that name exists")
    await refused("snapshot_create", { snapshot_name: "../up" }, "invalid_input")
    await refused("snapshot_delete", { snapshot_name: "baseline" }, "invalid_input", "cannot be deleted")
    expect((await ok("snapshot_list"))["count"]).toBe(2)
  }, 60_000)

  it("deletes a snapshot and frees the layer only it read", async () => {
    const before = layerCount()
    expect(await ok("snapshot_delete", { snapshot_name: "broken" })).toMatchObject({ snapshot_name: "broken", deleted: true })
    const listed = await ok("snapshot_list")
    expect(listed["snapshots"].map((s: Record<string, unknown>) => s["snapshot_name"])).toEqual(["baseline"])
    expect(layerCount()).toBeLessThan(before)

    await refused("workspace_reset", { snapshot: "broken" }, "workspace_snapshot_error", "no such snapshot; it has baseline")
  }, 60_000)

  it("snapshots a stopped workspace, reads its layered disk offline, and resets to it after start", async () => {
    // The guest writes a qcow2 header at the start of its raw disk: nothing on the host may take it for one.
    await sh(`dev=${SCRATCH_DEVICE}; test -b "$dev" && printf '${fakeQcow2Header()}' | dd of="$dev" conv=notrunc 2>/dev/null && sync`)
    expect(await sh(`head -c 4 ${SCRATCH_DEVICE} | od -An -c`)).toMatch(/Q\s+F\s+I/)
    await sh("echo stopped-state > app.txt")
    expect((await ok("workspace_stop"))["state"]).toBe("stopped")
    const taken = await ok("snapshot_create", { snapshot_name: "stopped" })
    expect(taken["frozen"]).toBe(false)
    const read = await ok("workspace_disk_read", { path: "app.txt" })
    expect(read["content"]).toBe("stopped-state\n")
    expect(Fs.existsSync(Path.join(stateDir, "workspaces", workspaceId, "disk-view.raw"))).toBe(false)

    await ok("workspace_start")
    await sh("echo later > app.txt")
    const reset = await ok("workspace_reset", { snapshot: "stopped" })
    expect(reset).toMatchObject({ reset_count: 3, snapshots: ["baseline", "stopped"] })
    expect(await files()).toBe("stopped-state\nnew-absent\n")
    expect(await sh(`head -c 4 ${SCRATCH_DEVICE} | od -An -c`)).toMatch(/Q\s+F\s+I/)
    // Every layer's header is still the host's: its backing a layer the host named, its format given.
    for (const layer of layerFiles()) {
      const info = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", "-f", "qcow2", layer], {
        cwd: workspaceDir(),
        encoding: "utf8"
      }))
      expect(info["backing-filename"]).toMatch(/^(scratch\.ext4|layer-[0-9a-f]{16}\.qcow2)$/)
      expect(info["backing-filename-format"]).toMatch(/^(raw|qcow2)$/)
    }
  }, 300_000)

  it("lists and resets from the CLI", async () => {
    const listed = await json("workspace", "snapshot", "list", workspaceId)
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.data["snapshots"].map((s: Record<string, unknown>) => s["snapshot_name"])).toEqual(["baseline", "stopped"])
    const reset = await json("workspace", "reset", workspaceId, "--snapshot", "baseline")
    expect(reset.code, reset.stderr).toBe(0)
    expect(reset.data).toMatchObject({ workspace_id: workspaceId, reset_count: 4 })
    expect(await files()).toBe("v1\nnew-absent\n")
  }, 300_000)

  it("keeps at most 32 snapshots: a 33rd is refused until one is deleted", async () => {
    // Stopped, so each snapshot is a layer made offline (no freeze, no QMP).
    await ok("workspace_stop")
    const have = ((await ok("snapshot_list"))["count"]) as number
    for (let i = have; i < 32; i++) await ok("snapshot_create", { snapshot_name: `s${i}` })
    expect((await ok("snapshot_list"))["count"]).toBe(32)
    await refused("snapshot_create", { snapshot_name: "one-too-many" }, "workspace_snapshot_error", "at most 32")
    await ok("snapshot_delete", { snapshot_name: "s31" })
    await ok("snapshot_create", { snapshot_name: "one-too-many" })
  }, 300_000)

  it("leaves no QEMU and no state once deleted", async () => {
    expect((await call("workspace_delete", { workspace_id: workspaceId })).isError).toBe(false)
    expect(qemuProcessesUnder(stateDir)).toEqual([])
    expect(Fs.existsSync(Path.join(stateDir, "workspaces", workspaceId))).toBe(false)
    workspaceId = ""
  }, 60_000)
})
