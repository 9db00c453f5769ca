/** The agent's shell output ring, compiled natively with sanitizers and run. */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { compileGuestNative } from "../support/guestNative.js"

describe("guest ring.c", () => {
  it("passes its black-box tests under ASan and UBSan", () => {
    const out = compileGuestNative(Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-ring-")), "ring_test"),
      ["test/ring_test.c", "agent/ring.c"])
    expect(execFileSync(out, { encoding: "utf8" })).toContain("ring tests passed")
    Fs.rmSync(Path.dirname(out), { recursive: true })
  })
})
