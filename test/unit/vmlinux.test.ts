import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { extractVmlinux, hasPvhEntry, lz4LegacyDecompress } from "../../src/kernel/vmlinux.js"

const cacheDir = process.env.PYRO_CACHE_DIR ?? Path.join(process.env.XDG_CACHE_HOME ?? Path.join(Os.homedir(), ".cache"), "pyro")
const kernelsDir = Path.join(cacheDir, "kernels")
const cachedKernel = Fs.existsSync(kernelsDir)
  ? Fs.readdirSync(kernelsDir).map((d) => Path.join(kernelsDir, d, "vmlinuz")).find((p) => Fs.existsSync(p))
  : undefined

describe("extractVmlinux", () => {
  it("decodes LZ4 legacy blocks with overlapping matches", () => {
    // Literal "ab", then a match of length 6 at offset 2 ("ababab"), then literal "!".
    const block = new Uint8Array([0x22, 0x61, 0x62, 0x02, 0x00, 0x10, 0x21])
    const frame = new Uint8Array(4 + 4 + block.byteLength)
    const view = new DataView(frame.buffer)
    view.setUint32(0, 0x184c2102, true)
    view.setUint32(4, block.byteLength, true)
    frame.set(block, 8)
    expect(new TextDecoder().decode(lz4LegacyDecompress(frame, 9))).toBe("abababab!")
    expect(lz4LegacyDecompress(frame, 10)).toBeUndefined()
  })

  it("returns nothing for what is not a bzImage", () => {
    expect(extractVmlinux(new Uint8Array(4096))).toBeUndefined()
    expect(hasPvhEntry(new Uint8Array(64))).toBe(false)
  })

  it.skipIf(!cachedKernel)("unpacks Debian's cloud kernel into a PVH-bootable ELF", () => {
    const elf = extractVmlinux(Fs.readFileSync(cachedKernel!))
    expect(elf).toBeDefined()
    expect(hasPvhEntry(elf!)).toBe(true)
  })
})
