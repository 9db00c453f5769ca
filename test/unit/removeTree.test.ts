/**
 * A tree pyro made is never removed while something is mounted inside it: a
 * debian build killed before mmdebstrap unmounted its chroot's binds of the
 * host's /dev files, /proc and /sys would otherwise have the removal reach
 * into the host's. Needs root (a real tmpfs mount), as CI runs.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { mountsUnder, removeStalePartials, removeTree } from "../../src/host/files.js"

const parent = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-remove-tree-"))
const mounted: Array<string> = []
afterAll(() => {
  for (const point of mounted) execFileSync("umount", [point], { stdio: "ignore" })
  Fs.rmSync(parent, { recursive: true, force: true })
})

/** A tmpfs at `point` holding one file, as a host mount left inside a build's tree stands for. */
const mountWithFile = (point: string) => {
  Fs.mkdirSync(point, { recursive: true })
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "pyro-test", point])
  mounted.push(point)
  Fs.writeFileSync(Path.join(point, "host-file"), "must survive")
}

const unmount = (point: string) => {
  execFileSync("umount", [point])
  mounted.splice(mounted.indexOf(point), 1)
}

describe("removeTree", () => {
  it.effect("leaves a stale build tree with a mount inside, and removes it once unmounted", () =>
    Effect.gen(function*() {
      // A leftover of a build whose process is gone (no such pid), its chroot's /dev/shm still mounted.
      const stale = Path.join(parent, "tree.partial-999999999-0123abcd")
      const point = Path.join(stale, "dev", "shm")
      mountWithFile(point)
      expect(mountsUnder(stale)).toEqual([point])

      yield* removeStalePartials(parent)
      expect(Fs.readFileSync(Path.join(point, "host-file"), "utf8")).toBe("must survive")

      unmount(point)
      expect(mountsUnder(stale)).toEqual([])
      yield* removeStalePartials(parent)
      expect(Fs.existsSync(stale)).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("says whether it removed, and a tree with no mount goes whole", () =>
    Effect.gen(function*() {
      const plain = Path.join(parent, "plain", "a", "b")
      Fs.mkdirSync(plain, { recursive: true })
      Fs.writeFileSync(Path.join(plain, "f"), "x")
      expect(yield* removeTree(Path.join(parent, "plain"))).toBe(true)
      expect(Fs.existsSync(Path.join(parent, "plain"))).toBe(false)

      const held = Path.join(parent, "held")
      mountWithFile(Path.join(held, "mnt"))
      expect(yield* removeTree(held)).toBe(false)
      expect(Fs.existsSync(Path.join(held, "mnt", "host-file"))).toBe(true)
    }).pipe(Effect.provide(NodeContext.layer)))
})
