import { describe, expect, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { copyRam, RAM_DIR, sweepOrphanRam } from "../../src/vm/ramFile.js"

/** Any shared library of the host's libc: what the loader maps. */
const LIBRARY = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"].find((p) => Fs.existsSync(p))!

describe("sweepOrphanRam", () => {
  it("deletes an old RAM file nothing maps, and spares a young one and one a process maps", async () => {
    // The real directory: the sweep reads /proc/*/maps for paths in it.
    const dir = RAM_DIR
    Fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tag = Math.random().toString(16).slice(2, 10).padEnd(8, "0")
    const [orphan, young, mapped] = ["a", "b", "c"].map((n) => Path.join(dir, `${tag}0000000${n}`))
    for (const f of [orphan!, young!]) Fs.writeFileSync(f, Buffer.alloc(4096))
    // A file a process maps, as QEMU maps a VM's RAM: a shared library the loader maps into `sleep`.
    Fs.copyFileSync(LIBRARY, mapped!)
    const old = new Date(Date.now() - 3600_000)
    Fs.utimesSync(orphan!, old, old)
    Fs.utimesSync(mapped!, old, old)
    const holder = spawn("sleep", ["60"], { env: { ...process.env, LD_PRELOAD: mapped! } })
    const mapsIt = () => {
      try {
        return Fs.readFileSync(`/proc/${holder.pid}/maps`, "utf8").includes(mapped!)
      } catch {
        return false
      }
    }
    for (let i = 0; i < 100 && !mapsIt(); i++) await new Promise((r) => setTimeout(r, 20))
    expect(mapsIt()).toBe(true)
    try {
      // The loader maps it into `sleep`, so the sweep is told to look at that process too.
      await Effect.runPromise(sweepOrphanRam(dir, undefined, (comm) => comm === "sleep" || comm.startsWith("qemu-system")))
      expect(Fs.existsSync(orphan!)).toBe(false)
      expect(Fs.existsSync(young!)).toBe(true)
      expect(Fs.existsSync(mapped!)).toBe(true)
    } finally {
      holder.kill("SIGKILL")
      for (const f of [orphan!, young!, mapped!]) Fs.rmSync(f, { force: true })
    }
  })

  it("writes only into a directory of this user's alone", async () => {
    const shared = Fs.mkdtempSync(Path.join("/dev/shm", "pyro-test-"))
    Fs.chmodSync(shared, 0o777)
    const from = Path.join(shared, "from")
    Fs.writeFileSync(from, "x")
    const failed = await Effect.runPromise(
      Effect.either(copyRam(from, Path.join(shared, "0123456789abcdef"))).pipe(Effect.provide(NodeContext.layer))
    )
    expect(failed._tag).toBe("Left")
    expect(Fs.existsSync(Path.join(shared, "0123456789abcdef"))).toBe(false)
    Fs.rmSync(shared, { recursive: true, force: true })
  })
})
