/**
 * A stopped workspace's disk image before it is read: its superblock (the
 * inode size the parsers need), and its journal replayed when the VM did not
 * power off cleanly (killed, or the host went down): debugfs reads only what
 * is at home on the disk, and a file written just before a kill may still be
 * only in the journal. A clean stop leaves nothing to replay (the agent
 * freezes the filesystem before powering off).
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { runHostCommand } from "../../host/command.js"
import { DebugfsFailed } from "./debugfs.js"

const SUPERBLOCK_OFFSET = 1024
const EXT4_MAGIC = 0xef53
/** s_feature_incompat's RECOVER bit: the journal holds changes not yet at home. */
const INCOMPAT_RECOVER = 0x4

export interface Superblock {
  readonly inodeSize: number
  readonly needsRecovery: boolean
}

export const readSuperblock = (image: string): Effect.Effect<Superblock, DebugfsFailed> =>
  Effect.try({
    try: () => {
      const block = Buffer.alloc(1024)
      const fd = Fs.openSync(image, "r")
      try {
        Fs.readSync(fd, block, 0, block.byteLength, SUPERBLOCK_OFFSET)
      } finally {
        Fs.closeSync(fd)
      }
      if (block.readUInt16LE(0x38) !== EXT4_MAGIC) throw new Error("not an ext4 filesystem")
      // Revision 0 has 128-byte inodes and no field saying so.
      const inodeSize = block.readUInt32LE(0x4c) === 0 ? 128 : block.readUInt16LE(0x58)
      if (inodeSize < 128 || inodeSize > 4096 || (inodeSize & (inodeSize - 1)) !== 0) throw new Error(`inode size ${inodeSize}`)
      return { inodeSize, needsRecovery: (block.readUInt32LE(0x60) & INCOMPAT_RECOVER) !== 0 }
    },
    catch: (e) => new DebugfsFailed({ detail: `the disk image is unreadable: ${(e as Error).message}` })
  })

/**
 * The superblock, once any journal left by an unclean stop is replayed into
 * the image (what the guest's kernel would do on its next boot, and nothing
 * more: e2fsck's journal_only checks and repairs nothing else).
 */
export const settledSuperblock = (image: string) =>
  Effect.gen(function*() {
    const superblock = yield* readSuperblock(image)
    if (!superblock.needsRecovery) return superblock
    yield* runHostCommand("e2fsck", ["-E", "journal_only", "-p", image]).pipe(
      // 1: "errors corrected" (the journal replayed).
      Effect.catchIf((e) => e.exitCode === 1, () => Effect.succeed(undefined)),
      Effect.mapError((e) => new DebugfsFailed({ detail: `its journal could not be replayed: ${e.message}` }))
    )
    return yield* readSuperblock(image)
  })
