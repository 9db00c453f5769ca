/**
 * Initramfs images whose /init is a BusyBox script instead of the agent: real
 * guests that misbehave on purpose (never answer, send garbage, panic).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { PyroConfig } from "../../src/services/PyroConfig.js"
import { cpioArchive, type CpioEntry } from "../../src/kernel/cpio.js"
import { cachedDebianKernel } from "../../src/kernel/debianKernel.js"

/** Shell lines that mount /dev and /sys and load the boot modules, as the agent would. */
const prelude = (modules: ReadonlyArray<string>) =>
  [
    "/bin/busybox mount -t devtmpfs dev /dev",
    "/bin/busybox mount -t sysfs sys /sys",
    ...modules.map((m) => `/bin/busybox insmod /lib/modules/${m}.ko`)
  ].join("\n")

/** BusyBox from the busybox-static package, downloaded once into the cache if `pyro env prune` removed it. */
export const busyboxBinary = (cacheDir: string, scratch: string) => {
  const debs = Path.join(cacheDir, "debs")
  const find = () => Fs.existsSync(debs) ? Fs.readdirSync(debs).find((n) => n.startsWith("busybox-static_")) : undefined
  if (!find()) {
    Fs.mkdirSync(debs, { recursive: true })
    execFileSync("apt-get", ["download", "-q", "busybox-static"], { cwd: debs, stdio: "ignore" })
  }
  const deb = find()
  if (!deb) throw new Error("cannot download busybox-static (apt-get download busybox-static)")
  const dir = Fs.mkdtempSync(Path.join(scratch, "busybox-"))
  execFileSync("dpkg-deb", ["-x", Path.join(debs, deb), dir])
  const binary = Fs.readFileSync(Path.join(dir, "bin", "busybox"))
  Fs.rmSync(dir, { recursive: true })
  return binary
}

/** Kernel and an initramfs whose /init runs `script` after the prelude. */
export const scriptInitrd = (name: string, script: string) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const kernel = Option.getOrThrowWith(yield* cachedDebianKernel(config.cacheDir), () => new Error("no cached kernel"))
    const { modules } = kernel.manifest
    const entries: Array<CpioEntry> = [
      ...["bin", "dev", "proc", "sys", "lib", "lib/modules"].map((p) => ({ type: "dir" as const, path: p, mode: 0o755 })),
      { type: "char", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
      { type: "file", path: "bin/busybox", mode: 0o755, data: busyboxBinary(config.cacheDir, config.stateDir) },
      {
        type: "file",
        path: "init",
        mode: 0o755,
        data: new TextEncoder().encode(`#!/bin/busybox sh\n${prelude(modules)}\n${script}\n`)
      },
      ...modules.map((m) => ({
        type: "file" as const,
        path: `lib/modules/${m}.ko`,
        mode: 0o644,
        data: Fs.readFileSync(Path.join(kernel.modulesDir, `${m}.ko`))
      }))
    ]
    const initrd = Path.join(config.stateDir, `${name}.cpio`)
    Fs.writeFileSync(initrd, cpioArchive(entries))
    return { kernel: kernel.vmlinuz, initrd }
  })
