/** The tiny environment: Debian's static BusyBox and a skeleton of a root filesystem. */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { runHostCommand } from "../host/command.js"
import { debVersion, extractDeb, fetchDeb } from "../host/debian.js"
import { withTempDir } from "../host/files.js"

const SKELETON_DIRS: ReadonlyArray<readonly [string, number]> = [
  ["bin", 0o755],
  ["sbin", 0o755],
  ["usr/bin", 0o755],
  ["usr/sbin", 0o755],
  ["etc", 0o755],
  ["root", 0o700],
  ["tmp", 0o1777],
  ["var/tmp", 0o1777],
  ["run", 0o755],
  ["proc", 0o555],
  ["sys", 0o555],
  ["dev", 0o755],
  ["workspace", 0o755]
]

const ETC_FILES: ReadonlyArray<readonly [string, string]> = [
  ["etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"],
  ["etc/group", "root:x:0:\nnogroup:x:65534:\n"],
  ["etc/hostname", "pyro\n"],
  ["etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n"],
  ["etc/os-release", 'NAME="pyro tiny"\nID=pyro-tiny\nPRETTY_NAME="pyro tiny (BusyBox)"\n']
]

/** Fill `root` with the tiny tree; returns the packages it contains. */
export const buildBusyboxTree = (
  root: string,
  cacheDir: string
): Effect.Effect<ReadonlyArray<string>, unknown, FileSystem.FileSystem | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const deb = yield* fetchDeb("busybox-static", Path.join(cacheDir, "debs"))
    for (const [dir, mode] of SKELETON_DIRS) {
      yield* fs.makeDirectory(Path.join(root, dir), { recursive: true })
      yield* fs.chmod(Path.join(root, dir), mode)
    }
    yield* withTempDir(cacheDir, "busybox", (unpacked) =>
      Effect.gen(function*() {
        yield* extractDeb(deb, unpacked)
        yield* fs.copyFile(Path.join(unpacked, "bin", "busybox"), Path.join(root, "bin", "busybox"))
      }))
    yield* fs.chmod(Path.join(root, "bin", "busybox"), 0o755)
    const { stdout } = yield* runHostCommand(Path.join(root, "bin", "busybox"), ["--list"])
    for (const applet of stdout.split("\n").map((s) => s.trim()).filter((s) => /^[a-z0-9_.[-]+$/.test(s))) {
      if (applet === "busybox") continue
      yield* fs.symlink("busybox", Path.join(root, "bin", applet)).pipe(Effect.ignore)
    }
    for (const [file, text] of ETC_FILES) yield* fs.writeFileString(Path.join(root, file), text)
    return [`busybox-static ${debVersion(deb)}`]
  })
