/** A template that could not be made is not tried again at every start, only after a while. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { BootError } from "../../src/vm/errors.js"
import { recentTemplateFailure, recordTemplateFailure, TEMPLATE_RETRY_AFTER_MS } from "../../src/vm/template.js"
import { restoreFailureBlame } from "../../src/vm/templateCache.js"
import { scopedTempDir } from "../support/tempDir.js"

describe("template failures", () => {
  it.scoped("are remembered beside the template for the retry delay, then forgotten", () =>
    Effect.gen(function*() {
      const root = yield* scopedTempDir("pyro-tplfail-")
      const dir = Path.join(root, "0123456789abcdef01234567")
      expect(recentTemplateFailure(dir, Date.now())).toBeUndefined()
      recordTemplateFailure(dir, "BootError: the guest agent did not answer")
      const now = Date.now()
      expect(recentTemplateFailure(dir, now)?.reason).toBe("BootError: the guest agent did not answer")
      expect(recentTemplateFailure(dir, now + TEMPLATE_RETRY_AFTER_MS + 1)).toBeUndefined()
      Fs.writeFileSync(`${dir}.failed`, "garbage")
      expect(recentTemplateFailure(dir, now)).toBeUndefined()
    }))

  it("of a restore are blamed on the template only when neither an outside kill nor the VM's own files explain them", () => {
    const killed = { code: null, signal: "SIGKILL" as const }
    expect(restoreFailureBlame(new BootError({ stage: "Kernel", detail: "QEMU killed by SIGKILL", vmmExit: killed }))).toBe("outside")
    expect(restoreFailureBlame(new BootError({ stage: "Prepare", detail: "scratch disk from the template: ENOSPC" }))).toBe("vm")
    expect(restoreFailureBlame(new BootError({ stage: "Restore", detail: "QMP migrate-incoming: failed" }))).toBe("template")
    // The words alone (a guest can print anything on its console) decide nothing.
    expect(restoreFailureBlame(new BootError({ stage: "Kernel", detail: "x", console: "killed by SIGKILL" }))).toBe("template")
    expect(restoreFailureBlame(new BootError({ stage: "Kernel", detail: "x", vmmExit: { code: 1, signal: null } }))).toBe("template")
  })
})
