import { describe, expect, it } from "@effect/vitest"
import { decideAccel, type KvmFacts } from "../../src/vm/accel.js"

const facts = (f: Partial<KvmFacts>): KvmFacts => ({
  deviceExists: true,
  readable: true,
  writable: true,
  hardwareVirtualisation: true,
  pvm: false,
  ...f
})

describe("decideAccel", () => {
  it("uses KVM with hardware virtualisation and an accessible /dev/kvm", () => {
    expect(decideAccel(facts({}), "auto").accel).toBe("kvm")
  })

  it("never trusts a PVM-only /dev/kvm, whose guests hang", () => {
    const decision = decideAccel(facts({ hardwareVirtualisation: false, pvm: true }), "auto")
    expect(decision).toMatchObject({ accel: "tcg", kvmUsable: false })
    expect(decision.reason).toContain("PVM")
  })

  it("falls back to TCG without /dev/kvm or without access to it", () => {
    expect(decideAccel(facts({ deviceExists: false }), "auto").accel).toBe("tcg")
    expect(decideAccel(facts({ writable: false }), "auto").reason).toContain("not readable and writable")
  })

  it("honours an explicit preference", () => {
    expect(decideAccel(facts({}), "tcg").accel).toBe("tcg")
    expect(decideAccel(facts({ pvm: true, hardwareVirtualisation: false }), "kvm").accel).toBe("kvm")
  })
})
