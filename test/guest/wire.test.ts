/** The agent's frame parser and field codec, compiled natively with sanitizers and run. */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { compileGuestNative } from "../support/guestNative.js"

describe("guest wire.c", () => {
  it("passes its black-box tests under ASan and UBSan", () => {
    const out = compileGuestNative(Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-wire-")), "wire_test"),
      ["test/wire_test.c", "agent/wire.c"])
    const stdout = execFileSync(out, { encoding: "utf8" })
    expect(stdout).toContain("wire tests passed")
    Fs.rmSync(Path.dirname(out), { recursive: true })
  })
})
