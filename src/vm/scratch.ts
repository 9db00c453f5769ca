/**
 * A VM's scratch disk (`scratch.ext4`, the overlay's upper layer): a sparse
 * file of the configured size, then formatted ext4, or a sparse copy of an
 * attached template's disk. Failures are the VM's own files (`Prepare`).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import { makeScratchImage } from "../environment/ext4.js"
import { runHostCommand } from "../host/command.js"
import { BootError } from "./errors.js"

const scratchFailure = (what: string) => (e: { readonly message: string }) =>
  new BootError({ stage: "Prepare", detail: `${what}: ${e.message}` })

/** The file at its full size, before QEMU opens it (it sizes the disk at start-up). */
export const createScratch = (path: string, sizeMib: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    // Sparse: the VM pays only for blocks it writes.
    yield* fs.writeFile(path, new Uint8Array())
    yield* fs.truncate(path, BigInt(sizeMib) * 1024n * 1024n)
  }).pipe(Effect.mapError(scratchFailure("scratch disk")))

/** An empty ext4 on a created scratch file (a journal for disks that must survive a crash of QEMU). */
export const formatScratch = (path: string, sizeMib: number, journal: boolean) =>
  makeScratchImage(path, sizeMib, journal).pipe(Effect.mapError(scratchFailure("scratch disk")))

/** The copy's command: sparse, so only the blocks the template's guest wrote (a few MB of an 8 GiB disk). */
export const scratchCopyCommand = (from: string, to: string) => ["cp", "--sparse=always", "--reflink=auto", "--", from, to] as const

/** A sparse copy of an attached template's disk, private to the VM. */
export const copyScratch = (from: string, to: string) =>
  runHostCommand("cp", scratchCopyCommand(from, to).slice(1)).pipe(
    Effect.zipRight(Effect.try(() => Fs.chmodSync(to, 0o600))),
    Effect.mapError(scratchFailure("scratch disk from the template"))
  )
