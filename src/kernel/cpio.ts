/**
 * A "newc" cpio archive, the initramfs format the kernel unpacks. Entries are
 * written with zero times and ids so the same inputs give the same bytes.
 */
export type CpioEntry =
  | { readonly type: "dir"; readonly path: string; readonly mode: number }
  | { readonly type: "file"; readonly path: string; readonly mode: number; readonly data: Uint8Array }
  | { readonly type: "char"; readonly path: string; readonly mode: number; readonly major: number; readonly minor: number }

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFCHR = 0o020000

const hex8 = (n: number) => n.toString(16).padStart(8, "0")
const pad4 = (n: number) => (4 - (n % 4)) % 4
const ascii = new TextEncoder()

const header = (ino: number, mode: number, size: number, name: string, rdev: readonly [number, number] = [0, 0]) => {
  const nameBytes = ascii.encode(`${name}\0`)
  const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], nameBytes.byteLength, 0]
  const head = ascii.encode(`070701${fields.map(hex8).join("")}`)
  const out = new Uint8Array(head.byteLength + nameBytes.byteLength + pad4(head.byteLength + nameBytes.byteLength))
  out.set(head)
  out.set(nameBytes, head.byteLength)
  return out
}

export const cpioArchive = (entries: ReadonlyArray<CpioEntry>): Uint8Array => {
  const parts: Array<Uint8Array> = []
  entries.forEach((entry, i) => {
    const name = entry.path.replace(/^\/+/, "")
    switch (entry.type) {
      case "dir":
        parts.push(header(i + 1, S_IFDIR | entry.mode, 0, name))
        break
      case "char":
        parts.push(header(i + 1, S_IFCHR | entry.mode, 0, name, [entry.major, entry.minor]))
        break
      case "file":
        parts.push(header(i + 1, S_IFREG | entry.mode, entry.data.byteLength, name))
        parts.push(entry.data, new Uint8Array(pad4(entry.data.byteLength)))
        break
    }
  })
  parts.push(header(0, 0, 0, "TRAILER!!!"))
  const total = parts.reduce((n, p) => n + p.byteLength, 0)
  const out = new Uint8Array(total)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}
