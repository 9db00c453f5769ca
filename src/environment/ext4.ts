/**
 * Read-only root images: `mkfs.ext4 -d` turns a directory into an image
 * without mounting anything or needing privileges. No journal (the image is
 * never written), no reserved blocks, and a UUID, hash seed and timestamps
 * derived from the name so rebuilding the same tree gives the same bytes.
 */
import * as Effect from "effect/Effect"
import { runHostCommand } from "../host/command.js"
import { sha256 } from "../host/files.js"

const uuidFrom = (seed: string) => {
  const h = sha256(seed)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
}

export const makeRootImage = (options: {
  readonly sourceDir: string
  readonly image: string
  readonly label: string
  readonly sizeMib: number
  /** Enough for the tree: mkfs's default ratio runs out on trees of many small files. */
  readonly inodes?: number
  readonly seed: string
}) =>
  runHostCommand("mkfs.ext4", [
    "-q",
    "-F",
    "-t",
    "ext4",
    "-L",
    options.label.slice(0, 16),
    "-O",
    "^has_journal",
    "-m",
    "0",
    ...(options.inodes ? ["-N", String(options.inodes)] : []),
    "-U",
    uuidFrom(options.seed),
    "-E",
    `root_owner=0:0,hash_seed=${uuidFrom(`${options.seed}/hash`)}`,
    "-d",
    options.sourceDir,
    options.image,
    `${options.sizeMib}M`
  ], { env: { E2FSPROGS_FAKE_TIME: "1700000000" } }).pipe(Effect.asVoid)

/** mkfs.ext4's arguments for a VM's scratch disk (makeScratchImage). */
export const scratchImageArgs = (path: string, sizeMib: number, journal: boolean) => [
  "-q",
  "-F",
  "-t",
  "ext4",
  "-m",
  "0",
  ...(journal ? [] : ["-O", "^has_journal"]),
  "-E",
  "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0",
  path,
  `${sizeMib}M`
]

/** Sparse scratch disk for one VM: an empty ext4 the agent mounts as the overlay's upper layer. */
export const makeScratchImage = (path: string, sizeMib: number, journal: boolean) =>
  runHostCommand("mkfs.ext4", scratchImageArgs(path, sizeMib, journal)).pipe(Effect.asVoid)
